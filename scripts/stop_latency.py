"""Final after stop on long utterances, A/B interleaved in one process (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/stop_latency.py --corpus DIR --reps 3 \
        --config before:max_segment_s=15 --config after:max_segment_s=6 [--out run.json]

One `LocalEngine` per configuration, all loaded at once; every clip is streamed at real-time pace
(50 ms frames, interims on, endpointing 300 ms), cut 50 ms after its last word and stopped, once per
configuration in turn (the order rotates every repetition), so machine load hits every configuration
alike. Measures, per clip: stop -> last final (what the benchmark calls final after stop; the stream's
own `close`, no WebSocket in between), the transcript's WER, and CPU seconds of the decode jobs.
Prints medians, p95 and the least-squares slope of latency against speech length (ms per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Literal

import numpy as np

from voxrelay.bench.common import RATE, load_clips
from voxrelay.bench.wer import wer
from voxrelay.engines.base import EngineObserver, FinalResult, StreamConfig
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings

_CHUNK = RATE // 20


def parse_config(text: str) -> tuple[str, dict[str, object]]:
    name, _, rest = text.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


class Jobs(EngineObserver):
    def __init__(self) -> None:
        self.run_s = {"final": 0.0, "interim": 0.0, "file": 0.0}

    def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        self.run_s[kind] += run_s


async def one(engine: LocalEngine, pcm: np.ndarray) -> tuple[float, str, int]:
    stream = await engine.open(StreamConfig(endpointing_ms=300, interim_results=True, vad_events=False))
    audio = (pcm.clip(-1, 1) * 32767).astype("<i2").astype(np.float32) / 32768.0
    finals: list[tuple[float, FinalResult]] = []

    async def collect() -> None:
        async for event in stream.events():
            if isinstance(event, FinalResult):
                finals.append((time.perf_counter(), event))

    collector = asyncio.create_task(collect())
    began = time.perf_counter()
    for i, offset in enumerate(range(0, len(audio), _CHUNK)):
        delay = began + (i + 1) * 0.05 - time.perf_counter()  # a frame leaves when its last sample is spoken
        if delay > 0:
            await asyncio.sleep(delay)
        await stream.send_audio(audio[offset : offset + _CHUNK])
    stop = time.perf_counter()
    await stream.close()
    await collector
    after = [t - stop for t, _ in finals if t >= stop]
    text = " ".join(f.transcript for _, f in finals if f.transcript)
    return (after[-1] if after else float("nan")), text, len(finals)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--config", action="append", required=True, help="NAME:option=value,option=value")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    clips = load_clips(Path(args.corpus), subsets=("real", "synth"))
    configs = [parse_config(c) for c in args.config]
    engines: dict[str, LocalEngine] = {}
    jobs: dict[str, Jobs] = {}
    for name, options in configs:
        engines[name] = LocalEngine(LocalSettings(**options))
        jobs[name] = Jobs()
        engines[name].observe(jobs[name])
        await engines[name].start()
    rows: list[dict[str, object]] = []
    names = [n for n, _ in configs]
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for clip in clips:
            for name in order:
                latency, text, n_finals = await one(engines[name], clip.trimmed())
                rows.append({"config": name, "rep": rep, "clip": clip.name, "speech_s": clip.speech_end -
                             clip.speech_start, "latency_s": latency, "text": text, "finals": n_finals,
                             "reference": clip.reference})
            print(f"rep {rep} {clip.name}: " + "  ".join(
                f"{r['config']} {1000 * r['latency_s']:.0f} ms" for r in rows[-len(order):]), flush=True)
    for engine in engines.values():
        await engine.stop()
    print(f"\n{'config':12s} {'p50 ms':>7s} {'p95 ms':>7s} {'max ms':>7s} {'slope ms/s':>10s} {'WER %':>6s} "
          f"{'final s':>8s} {'interim s':>9s}")
    for name in names:
        mine = [r for r in rows if r["config"] == name]
        lat = np.array([r["latency_s"] for r in mine], dtype=float) * 1000
        length = np.array([r["speech_s"] for r in mine], dtype=float)
        ok = ~np.isnan(lat)
        slope = float(np.polyfit(length[ok], lat[ok], 1)[0]) if ok.sum() > 1 else float("nan")
        first = mine  # pooled over repetitions
        w = 100 * wer([str(r["reference"]) for r in first], [str(r["text"]) for r in first])
        print(f"{name:12s} {np.percentile(lat[ok], 50):7.0f} {np.percentile(lat[ok], 95):7.0f} {lat[ok].max():7.0f} "
              f"{slope:10.1f} {w:6.2f} {jobs[name].run_s['final']:8.1f} {jobs[name].run_s['interim']:9.1f}")
    if args.out:
        await asyncio.to_thread(Path(args.out).write_text, json.dumps({"configs": configs, "rows": rows}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
