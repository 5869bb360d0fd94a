"""First interim after speech onset, A/B interleaved in one process (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/first_interim.py [--corpus DIR] [--reps 2] \
        --config now: --config sooner:first=0.1,retry=0.1

Every clip is streamed at real-time pace (50 ms frames, interims on) up to 1.2 s after its onset (the
benchmark's energy gate), then stopped; configurations take turns clip by clip. `first` and `retry` set
the stream's `InterimPacer.first_s` and `retry_s` (speech before the first interim decode, new speech before
asking again while none had text); any other key is a `LocalSettings` field (e.g.
`interim_window_pad_s=1`), and each configuration gets its own engine. Prints, per configuration,
the first interim's arrival after onset (p50 / p95; clips with none counted apart), how many interim
decodes ran before it, and how often its first word is the reference's first word (a hallucinated first
word shows up there).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Literal

import numpy as np

from voxrelay.bench.common import RATE, find_corpus, load_clips
from voxrelay.bench.wer import normalize
from voxrelay.engines.base import EngineObserver, InterimResult, StreamConfig
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings

_CHUNK = RATE // 20
_AFTER_ONSET_S = 1.2


class Decodes(EngineObserver):
    def __init__(self) -> None:
        self.interims = 0

    def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        self.interims += kind == "interim"


async def first_interim(
    engine: LocalEngine, decodes: Decodes, pcm: np.ndarray, onset: float, options: dict[str, float]
) -> tuple[float, str, int]:
    stream = await engine.open(StreamConfig(endpointing_ms=300, interim_results=True, vad_events=False))
    pacer = getattr(stream, "_interims", None)  # a measuring script sets the thresholds per stream
    if options:  # (main before issue 16's pacer has none to set: run it with no options)
        assert pacer is not None
        pacer.first_s, pacer.retry_s = options.get("first", pacer.first_s), options.get("retry", pacer.retry_s)
    audio = (pcm.clip(-1, 1) * 32767).astype("<i2").astype(np.float32) / 32768.0
    audio = audio[: int((onset + _AFTER_ONSET_S) * RATE)]
    seen: list[tuple[float, str, int]] = []
    before = decodes.interims

    async def collect() -> None:
        async for event in stream.events():
            if isinstance(event, InterimResult) and not seen:
                seen.append((time.perf_counter(), event.transcript, decodes.interims - before))

    collector = asyncio.create_task(collect())
    began = time.perf_counter()
    for i, offset in enumerate(range(0, len(audio), _CHUNK)):
        delay = began + (i + 1) * 0.05 - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await stream.send_audio(audio[offset : offset + _CHUNK])
    await stream.close()
    await collector
    if not seen:
        return float("nan"), "", decodes.interims - before
    arrived, text, n = seen[0]
    return arrived - began - onset, text, n


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus")
    parser.add_argument("--config", action="append", required=True, help="NAME:first=S,retry=S,SETTING=VALUE")
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    clips = load_clips(Path(args.corpus) if args.corpus else find_corpus(), subsets=("real", "synth"))
    configs: list[tuple[str, dict[str, float]]] = []
    for text in args.config:
        name, _, rest = text.partition(":")
        configs.append((name, {k: float(v) for k, v in (item.split("=") for item in rest.split(",") if item)}))
    engines: dict[str, tuple[LocalEngine, Decodes]] = {}
    for name, options in configs:  # one engine per configuration (engine settings may differ)
        settings = {k: v for k, v in options.items() if k not in ("first", "retry")}
        engine, decodes = LocalEngine(LocalSettings(**settings)), Decodes()
        engine.observe(decodes)
        await engine.start()
        engines[name] = engine, decodes
    rows: dict[str, list[tuple[float, bool, int]]] = {name: [] for name, _ in configs}
    for rep in range(args.reps):
        for clip in clips:
            for k in range(len(configs)):
                name, options = configs[(k + rep) % len(configs)]
                pacer = {k: v for k, v in options.items() if k in ("first", "retry")}
                engine, decodes = engines[name]
                latency, text, n = await first_interim(engine, decodes, clip.trimmed(), clip.speech_start, pacer)
                said, heard = normalize(clip.reference).split()[:1], normalize(text).split()[:1]
                rows[name].append((latency, bool(said) and said == heard, n))
    for engine, _ in engines.values():
        await engine.stop()
    print(f"{'config':10s} {'p50 ms':>7s} {'p95 ms':>7s} {'none':>5s} {'decodes':>8s} {'1st word ok':>11s}")
    for name, _ in configs:
        lat = np.array([r[0] for r in rows[name]]) * 1000
        ok = ~np.isnan(lat)
        print(f"{name:10s} {np.percentile(lat[ok], 50):7.0f} {np.percentile(lat[ok], 95):7.0f} {(~ok).sum():5d} "
              f"{np.mean([r[2] for r in rows[name]]):8.2f} {100 * np.mean([r[1] for r in rows[name]]):10.0f}%")


if __name__ == "__main__":
    asyncio.run(main())
