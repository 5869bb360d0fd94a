"""What a stop leaves to decode on long utterances, without pacing or interims (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/stop_tail_cost.py CORPUS_DIR REPS "" max_segment_s=6 ...

Each argument after REPS is a configuration (LocalEngine options, comma-separated; "" = defaults). A clip is
fed as fast as the CPU allows, everything decoded before the stop is waited for (no interims run), then the
stream is stopped and the time to its last final is taken: the decode of the audio pending at the stop, the
part of final-after-stop that grows with the utterance. Configurations alternate clip by clip. Prints p50/p95,
the slope against speech length and the pending audio; writes the rows to /tmp/tail_cost.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

from voxrelay.bench.common import load_clips
from voxrelay.engines.base import FinalResult, StreamConfig
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings


async def one(engine: LocalEngine, pcm: np.ndarray) -> tuple[float, float]:
    """(stop -> last final in s, seconds of audio pending at the stop)."""
    assert engine.scheduler is not None
    stream = await engine.open(StreamConfig(endpointing_ms=300, interim_results=False, vad_events=False))
    audio = (pcm.clip(-1, 1) * 32767).astype("<i2").astype(np.float32) / 32768.0
    arrivals: list[float] = []

    async def collect() -> None:
        async for event in stream.events():
            if isinstance(event, FinalResult):
                arrivals.append(time.perf_counter())

    task = asyncio.create_task(collect())
    for offset in range(0, len(audio), 800):
        await stream.send_audio(audio[offset : offset + 800])
    # A measuring script polls: the stream has no "idle" event, and only the stop is timed.
    while not stream._inbox.empty() or engine.scheduler.busy or engine.scheduler.queued:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    segmenter = stream._segmenter
    pending = segmenter.end_time - segmenter._origin / 16000
    stopped = time.perf_counter()
    await stream.close()
    await task
    after = [t - stopped for t in arrivals if t >= stopped]
    return (after[-1] if after else float("nan")), pending


async def main() -> None:
    clips = load_clips(Path(sys.argv[1]))
    reps, specs = int(sys.argv[2]), sys.argv[3:]
    engines = []
    for spec in specs:
        options = {k: json.loads(v) for k, v in (s.split("=") for s in spec.split(",") if s)}
        engine = LocalEngine(LocalSettings(**options))
        await engine.start()
        engines.append(engine)
    rows: dict[str, list[tuple[str, float, float, float]]] = {s: [] for s in specs}
    for rep in range(reps):
        for clip in clips:
            for i in range(len(specs)):
                j = (i + rep) % len(specs)
                latency, pending = await one(engines[j], clip.trimmed())
                rows[specs[j]].append((clip.name, clip.speech_end - clip.speech_start, latency * 1000, pending))
    for spec in specs:
        lat = np.array([r[2] for r in rows[spec]])
        length = np.array([r[1] for r in rows[spec]])
        pend = np.array([r[3] for r in rows[spec]])
        print(
            f"{spec or 'default':30s} stop->final p50 {np.median(lat):.0f} p95 {np.percentile(lat, 95):.0f} ms, "
            f"slope {np.polyfit(length, lat, 1)[0]:.1f} ms/s, pending audio p50 {np.median(pend):.1f} s "
            f"max {pend.max():.1f} s"
        )
    await asyncio.to_thread(Path("/tmp/tail_cost.json").write_text, json.dumps(rows))
    for engine in engines:
        await engine.stop()


if __name__ == "__main__":
    asyncio.run(main())
