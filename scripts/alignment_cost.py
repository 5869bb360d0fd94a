"""What word timings cost a final: the local engine's final decode timed with and without the alignment pass.

Dictation turns word timings on for finals (protocol.dictation judges a command by the pauses
around it), so every final pays for the cross-attention alignment. This times the engine's
final decode (its settings: beam, window padding) on utterance-length clips, each decoded
`--runs` times both ways (interleaved) after a warm-up, and prints the median CPU time per clip and overall.
Run from the repository root:
    PYTHONPATH=src .venv/bin/python scripts/alignment_cost.py [--runs 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

from voxrelay.client import load_audio
from voxrelay.engines.local.settings import LocalSettings
from voxrelay.engines.local.whisper import WhisperDecoder

CLIPS = [  # one utterance each, 3-7 s: what a final usually holds
    "tests/fixtures/audio/s10_dictation_email.wav",
    "tests/fixtures/audio/librivox_sas_0870.wav",
    "tests/fixtures/audio/s07_names_message.wav",
    "tests/fixtures/dictation/c01_slt.wav",
    "tests/fixtures/dictation/c12_awb.wav",
]


def cpu_name() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name")), "unknown CPU")


def cpu_ms(decoder: WhisperDecoder, settings: LocalSettings, pcm: np.ndarray, timings: bool) -> float:
    """One final decode's CPU time in ms (all the process's threads): on a shared machine other processes'
    load moved wall times by more than the alignment costs."""
    started = time.process_time()
    decoder.decode(
        pcm, beam_size=settings.final_beam_size, word_timestamps=timings, window_pad_s=settings.final_window_pad_s
    )
    return (time.process_time() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    settings = LocalSettings()
    decoder = WhisperDecoder.from_settings(settings)
    print(f"{settings.model}, {settings.compute_type}, beam {settings.final_beam_size}, CPU: {cpu_name()}")
    totals: dict[bool, list[float]] = {False: [], True: []}
    for path in CLIPS:
        pcm = load_audio(path, 16000)
        cpu_ms(decoder, settings, pcm, False), cpu_ms(decoder, settings, pcm, True)  # warm-up
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(runs):  # interleaved, so a busy moment of the machine hits both alike
            for timings in (False, True):
                times[timings].append(cpu_ms(decoder, settings, pcm, timings))
        medians = {timings: statistics.median(values) for timings, values in times.items()}
        for timings in (False, True):
            totals[timings].append(medians[timings])
        extra = medians[True] - medians[False]
        print(f"{Path(path).name:28} {len(pcm) / 16000:4.1f} s  without {medians[False]:6.1f} ms CPU  "
              f"with {medians[True]:6.1f} ms  +{extra:5.1f} ms ({extra / medians[False]:+.0%})")
    without, with_ = statistics.mean(totals[False]), statistics.mean(totals[True])
    print(f"mean of medians: without {without:.1f} ms, with {with_:.1f} ms, +{with_ - without:.1f} ms "
          f"({(with_ - without) / without:+.0%})")


if __name__ == "__main__":
    main()
