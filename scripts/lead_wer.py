"""Streaming finals' WER when a clip starts at a random moment, as a browser's microphone delivers it.

    PYTHONPATH=src .venv/bin/python scripts/lead_wer.py --leads 3 \
        --config today: --config full:final_window_pad_s=null [--clip s01_command_lights.wav --leads 40]

Where the segment starts (the VAD's 32 ms windows against the speech) depends on how much silence
came first, and tiny.en's words on a short clip depend on it: a single decode per clip, as
`scripts/wer_gap.py` makes, hides that. Every clip of the test fixtures' --subsets (or --clip) is streamed
once per lead: 0.3-1.3 s of silence before, 0.3-0.8 s after, a gain of 0.7-1.0, and every second
lead through 16 -> 48 -> 16 kHz resampling at a random phase (a fake microphone's path in Chromium),
then as linear16 (`bench.offline.stream_finals`: interims off, finals do not depend on them). Prints
each clip's mean WER per configuration, then the pooled WER, how many streams had any error and more
than 20 % (the browser tests' bound), and the finals' mean decode time. Configurations as in
scripts/stop_latency.py (`NAME:option=value,...`).
--whole-file adds faster-whisper's own transcription of the same audio (beam 5, 30 s windows: what the
issue's WER gap is measured against) as one more row, so the gap is taken over the same leads.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Literal

import numpy as np
import soxr
from stop_latency import parse_config  # the script's own directory is on sys.path

from voxrelay.bench.common import RATE, find_corpus, load_clips
from voxrelay.bench.local import whole_file_texts
from voxrelay.bench.offline import linear16_round_trip, stream_finals
from voxrelay.bench.wer import wer
from voxrelay.engines.base import EngineObserver
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings


class FinalTimes(EngineObserver):
    def __init__(self) -> None:
        self.run_s = 0.0
        self.count = 0

    def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        if kind == "final":
            self.run_s += run_s
            self.count += 1


def as_delivered(pcm: np.ndarray, rng: np.random.Generator, resample: bool) -> np.ndarray:
    lead, tail, gain = rng.uniform(0.3, 1.3), rng.uniform(0.3, 0.8), rng.uniform(0.7, 1.0)
    audio = np.concatenate([np.zeros(int(lead * RATE), np.float32), pcm * gain, np.zeros(int(tail * RATE), np.float32)])
    if resample:
        up = soxr.resample(audio, RATE, 3 * RATE)
        audio = soxr.resample(up[int(rng.integers(0, 3)) :], 3 * RATE, RATE)
    return audio


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", action="append", required=True, help="NAME:option=value,option=value")
    parser.add_argument("--leads", type=int, default=3)
    parser.add_argument("--clip", help="one fixture clip only")
    parser.add_argument("--subsets", default="real,synth", help="refs.tsv subsets (the benchmark's corpus: real,synth)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--whole-file", action="store_true", help="also faster-whisper's whole-file transcription")
    args = parser.parse_args()
    clips = load_clips(find_corpus(), subsets=("real", "synth", "noisy") if args.clip else args.subsets.split(","))
    clips = [clip for clip in clips if not args.clip or clip.name == args.clip]
    engines: dict[str, LocalEngine] = {}
    times: dict[str, FinalTimes] = {}
    for name, options in map(parse_config, args.config):
        engines[name], times[name] = LocalEngine(LocalSettings(**options)), FinalTimes()  # type: ignore[arg-type]
        engines[name].observe(times[name])
        await engines[name].start()
    rng = np.random.default_rng(args.seed)
    refs: list[str] = []
    names: list[str] = []
    delivered: list[np.ndarray] = []
    texts: dict[str, list[str]] = {name: [] for name in engines}
    for clip in clips:
        for lead in range(args.leads):
            audio = as_delivered(clip.pcm, rng, resample=lead % 2 == 1)
            refs.append(clip.reference)
            names.append(clip.name)
            delivered.append(linear16_round_trip(audio))
            for name, engine in engines.items():  # the same audio for every configuration
                finals = await stream_finals(engine, audio)
                texts[name].append(" ".join(f.transcript for f in finals if f.transcript))
    for engine in engines.values():
        await engine.stop()
    if args.whole_file:
        texts["whole-file"] = whole_file_texts(delivered)
    for clip in clips:
        mine = [i for i, name in enumerate(names) if name == clip.name]
        means = {n: np.mean([wer([refs[i]], [texts[n][i]]) for i in mine]) for n in texts}
        print(clip.name, "  ".join(f"{n} {m:.3f}" for n, m in means.items()), flush=True)
    for name in texts:
        each = [wer([r], [t]) for r, t in zip(refs, texts[name], strict=True)]
        print(f"{name:12s} WER {100 * wer(refs, texts[name]):.2f} %  streams with errors {sum(e > 0 for e in each)}"
              f" / over 20 % {sum(e > 0.2 for e in each)} of {len(each)}" + (
                  f"  final decode mean {1000 * times[name].run_s / max(times[name].count, 1):.0f} ms"
                  if name in times else ""))


if __name__ == "__main__":
    asyncio.run(main())
