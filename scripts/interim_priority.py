"""A final's decode time while interims keep both cores busy: interims on the finals' decoder, or on a second
decoder whose CTranslate2 threads run at a lower CPU priority (issue 16; the file lane's mechanism).

    PYTHONPATH=src .venv/bin/python scripts/interim_priority.py shared 0 40
    PYTHONPATH=src .venv/bin/python scripts/interim_priority.py lane 10 40     # MODE NICE SECONDS

Needs the long sets in /tmp/long_joined and /tmp/long_tts (scripts/make_long_set.py). Windows as the stop's
final: the last 4.5 s of each clip of 8 s or more after 3 s of context, silence 6 s, greedy, word timings;
interims: the same 4.5 s, silence 2 s. Two threads decode interims back to back for SECONDS while the main
thread decodes finals one after another. `shared`: one decoder with three workers for both (nice 0); `lane`:
finals on a one-worker decoder, interims on a two-worker decoder created from a thread whose nice value was
raised by NICE (`file_lane.lower_thread_priority`: the threads CTranslate2 starts inherit it). Prints the
final's time alone and under the load (p50, p95) and the interims decoded per second.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

from voxrelay.bench.common import load_clips
from voxrelay.engines.local.file_lane import lower_thread_priority
from voxrelay.engines.local.whisper import Context, WhisperDecoder

RATE = 16000


def decoder_at(nice: int) -> WhisperDecoder:
    made: list[WhisperDecoder] = []

    def make() -> None:
        if not lower_thread_priority(nice):
            raise SystemExit("could not raise the interim decoder's nice value")
        made.append(WhisperDecoder("tiny.en", cpu_threads=1, workers=2, token_threads=1))

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    return made[0]


def main() -> None:
    mode, nice, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    windows = []
    for clip in load_clips(Path("/tmp/long_joined")) + load_clips(Path("/tmp/long_tts")):
        audio = clip.trimmed().astype(np.float32)
        if len(audio) >= 8 * RATE:
            windows.append((audio[-int(4.5 * RATE) :], audio[-int(7.5 * RATE) : -int(4.5 * RATE)]))
    finals = WhisperDecoder("tiny.en", cpu_threads=1, workers=3 if mode == "shared" else 1, token_threads=1)
    interims = finals if mode == "shared" else decoder_at(nice)
    jobs = [(tail, Context(ctx, finals.decode(ctx, language="en", window_pad_s=6.0).text)) for tail, ctx in windows]

    def final(job: tuple[np.ndarray, Context]) -> float:
        began = time.perf_counter()
        finals.decode(job[0], language="en", word_timestamps=True, window_pad_s=6.0, context=job[1])
        return time.perf_counter() - began

    for job in jobs[:2]:  # warm both decoders
        final(job)
        interims.decode(job[0], language="en", window_pad_s=2.0)
    alone = [final(job) for job in jobs]
    stop = time.perf_counter() + seconds
    done = [0, 0]

    def interim_loop(k: int) -> None:
        while time.perf_counter() < stop:
            interims.decode(jobs[(done[k] * 2 + k) % len(jobs)][0], language="en", window_pad_s=2.0)
            done[k] += 1

    loops = [threading.Thread(target=interim_loop, args=(k,)) for k in range(2)]
    began = time.perf_counter()
    for thread in loops:
        thread.start()
    loaded: list[float] = []
    while time.perf_counter() < stop - 1:
        loaded.append(final(jobs[len(loaded) % len(jobs)]))
    for thread in loops:
        thread.join()
    p95 = statistics.quantiles(loaded, n=20)[18]
    print(f"{mode} nice={nice}: final alone p50 {statistics.median(alone) * 1000:.0f} ms; with two interim loops "
          f"p50 {statistics.median(loaded) * 1000:.0f} / p95 {p95 * 1000:.0f} ms ({len(loaded)} finals); "
          f"interims {sum(done) / (time.perf_counter() - began):.2f} / s")


if __name__ == "__main__":
    main()
