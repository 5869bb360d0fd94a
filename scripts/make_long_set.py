"""Build long-utterance clips (5-20 s of speech, no pause of 300 ms inside) for the stop-latency benchmark (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/make_long_set.py joined OUT_DIR   # from the corpus (development set)
    PYTHONPATH=src .venv/bin/python scripts/make_long_set.py tts OUT_DIR      # Festival HTS voice (reporting set)

`joined`: corpus clips (real + synth) cut to their speech (energy gate, 40 ms margin) and joined with a 20 ms
crossfade, so the sentences run on without a pause; 0.3 s of silence before, 0.3 s after. Licenses: those of the
source clips (see the corpus' refs.tsv). `tts`: long sentences written for this set, spoken by Festival's
cmu_us_slt_arctic_hts voice (`text2wave`, Debian package festvox-us-slt-hts), resampled to 16 kHz; the voice's
license is the CMU ARCTIC one (free use). Either folder gets refs.tsv in the corpus' format (subset `real`), so
`voxrelay bench --corpus OUT_DIR` and `load_clips` read it.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from voxrelay.bench.common import RATE, find_corpus, load_clips
from voxrelay.client import load_audio

JOINS = [
    ["speechbrain_spk1_snt1.wav", "speechbrain_spk1_snt3.wav",
     "speechbrain_spk1_snt4.wav", "speechbrain_spk1_snt5.wav"],
    ["librivox_sas_0870.wav", "librivox_sas_0880.wav", "librivox_sas_0890.wav"],
    ["librivox_sas_0920.wav", "librivox_sas_0930.wav"],
    ["ljspeech_LJ001-0001.wav", "ljspeech_LJ001-0004.wav"],
    ["ljspeech_LJ001-0003.wav"],
    ["fw_stereo_left.wav", "fw_stereo_right.wav"],
    ["vctk_p225_002.wav", "timit_LDC93S1.wav", "deepspeech_new_home.wav"],
    ["pocketsphinx_cards_005.wav", "speechbrain_example1.wav", "speechbrain_example5.wav"],
    ["s07_names_message.wav", "s08_names_flight.wav"],
    ["s10_dictation_email.wav", "s04_numbers_phone.wav"],
    ["s03_question_weather.wav", "s14_question_distance.wav", "s15_address_navigation.wav"],
    ["s05_numbers_money.wav", "s06_numbers_date_time.wav", "s01_command_lights.wav"],
]

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


def join(parts: list[np.ndarray], fade_s: float = 0.02) -> np.ndarray:
    fade = int(fade_s * RATE)
    out = parts[0]
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    for part in parts[1:]:
        mixed = out[-fade:] * (1 - ramp) + part[:fade] * ramp
        out = np.concatenate([out[:-fade], mixed, part[fade:]])
    return out


def write(out: Path, name: str, pcm: np.ndarray, source: str, license_note: str, text: str, rows: list) -> None:
    import wave

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
        clips = {c.name: c for c in load_clips(find_corpus(), subsets=("real", "synth"))}
        for i, names in enumerate(JOINS):
            pcm = join([speech(clips[n].pcm) for n in names])
            text = " ".join(clips[n].reference for n in names)
            write(out, f"long_{i:02d}.wav", pcm, "voxrelay corpus", "see the corpus refs.tsv of: " + " + ".join(names),
                  text, rows)
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
