"""Build long-utterance clips (5-20 s of speech, no pause of 300 ms inside) for the stop-latency benchmark (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/make_long_set.py joined OUT_DIR   # from the corpus (development set)
    PYTHONPATH=src .venv/bin/python scripts/make_long_set.py tts OUT_DIR      # Festival HTS voice (reporting set)

`joined`: the set `voxrelay bench --long` builds at bench time (`voxrelay.bench.longset`: single-sentence corpus
recordings and corpus sentences joined with 50 ms gaps, 5-20 s, no pause of 300 ms inside), written out as WAVs,
e.g. for `stop_latency.py`. Licenses: those of the source clips (see the corpus' refs.tsv). Before
`bench.longset` existed (issue 16's first slice) this joined other groups with a 20 ms crossfade and no pause
check.

`tts` (report-only: pass the folder to `voxrelay bench --long-set OUT_DIR`): long sentences written for this set,
spoken by Festival's cmu_us_slt_arctic_hts voice (`text2wave`, Debian package festvox-us-slt-hts), resampled to
16 kHz; the voice's license is the CMU ARCTIC one (free use); one sentence (tts_07) is 4 s, under the set's 5 s.
Either folder gets refs.tsv in the corpus' format (subset `real`), so `voxrelay bench --corpus OUT_DIR`,
`--long-set OUT_DIR` and `load_clips` read it.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from voxrelay.bench.common import RATE, find_corpus
from voxrelay.bench.longset import build_long_set
from voxrelay.client import load_audio

SENTENCES = [
    "Please remind me to call the landlord tomorrow morning about the broken heater in the back bedroom.",
    "The quarterly report shows that revenue grew by twelve percent while operating costs stayed roughly flat "
    "compared with the same period last year.",
    "When you reach the second roundabout take the third exit and follow the signs toward the old railway "
    "station until you see a blue warehouse on your left.",
    "I would like to book a table for four people on Saturday evening at around half past seven if anything "
    "is still available near the window.",
    "Our team has decided to postpone the product launch by two weeks so that we can finish the security "
    "review and fix the remaining issues that the testers found in the mobile application.",
    "Send a message to Margaret saying that the documents are ready and that she can pick them up from the "
    "front desk any time after lunch.",
    "The museum's new exhibition brings together paintings, letters and photographs from the early years of "
    "the century and tells the story of a small fishing town that slowly became a busy port with ships "
    "arriving from all over the world.",
    "Add milk, eggs, two loaves of bread and a bag of apples to the shopping list.",
    "Scientists have long suspected that the migration patterns of these birds depend on the length of the "
    "day rather than on the temperature, and the new tracking data appears to confirm that idea.",
    "Could you explain once more how the new expense policy applies to travel that was booked before the "
    "first of March but taken afterwards?",
]


def speech(pcm: np.ndarray, margin_s: float = 0.04) -> np.ndarray:
    n = len(pcm) // 320
    rms = np.sqrt(np.mean(pcm[: n * 320].reshape(n, 320) ** 2, axis=1)) + 1e-9
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > -35.0)
    a = max(0, loud[0] * 320 - int(margin_s * RATE))
    b = min(len(pcm), (loud[-1] + 1) * 320 + int(margin_s * RATE))
    return pcm[a:b]


def write(out: Path, name: str, pcm: np.ndarray, source: str, license_note: str, text: str, rows: list,
          pad: bool = True) -> None:
    import wave

    if pad:
        silence = np.zeros(int(0.3 * RATE), dtype=np.float32)
        pcm = np.concatenate([silence, pcm / max(1.0, float(np.abs(pcm).max())), silence])
    with wave.open(str(out / name), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((pcm.clip(-1, 1) * 32767).astype("<i2").tobytes())
    rows.append([name, f"{len(pcm) / RATE:.3f}", source, name, license_note, text, "real"])


def main() -> None:
    kind, out = sys.argv[1], Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rows: list = []
    if kind == "joined":
        for long in build_long_set(find_corpus()):
            name = long.clip.name if long.clip.name.endswith(".wav") else long.clip.name + ".wav"
            note = "see the corpus refs.tsv of: " + " + ".join(long.sources)
            write(out, name, long.clip.pcm, "voxrelay corpus", note, long.clip.reference, rows, pad=False)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(SENTENCES):
                txt, wav = Path(tmp, "in.txt"), Path(tmp, "out.wav")
                txt.write_text(text)
                subprocess.run(["text2wave", "-F", "16000", "-otype", "riff", str(txt), "-eval",
                                "(voice_cmu_us_slt_arctic_hts)", "-o", str(wav)], check=True)
                write(out, f"tts_{i:02d}.wav", speech(load_audio(str(wav))), "festival cmu_us_slt_arctic_hts",
                      "synthesized for voxrelay; CMU ARCTIC voice license (free use)", text, rows)
    with open(out / "refs.tsv", "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["file", "duration_s", "source_repo", "source_path", "license_note", "reference_transcript",
                    "subset"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
