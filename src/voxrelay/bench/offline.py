"""The local engine's finals without a server or a clock: a fast, deterministic WER harness.

A `LocalStream`'s finals depend only on the audio it is fed (VAD windows, segment cuts
and final decodes are all driven by samples, not by wall time), so feeding a clip as
fast as possible gives the same finals the benchmark gets at real-time pace over a
WebSocket. Interims are turned off (they never change a final and only cost CPU).
Audio goes through the same linear16 round trip as the benchmark's client and server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from voxrelay.bench.common import RATE, Clip
from voxrelay.engines.base import EngineObserver, FinalResult, StreamConfig
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings

__all__ = ["OfflineResults", "bench_stream", "linear16_round_trip", "run_offline", "stream_finals"]

_CHUNK = RATE // 20  # 50 ms frames, as the benchmark client sends them


def bench_stream(clip: Clip) -> np.ndarray:
    """What `measure_endpointing` streams: the clip cut 50 ms after its last word, then 1.5 s of silence."""
    return np.concatenate([clip.trimmed(), np.zeros(int(1.5 * RATE), dtype=np.float32)])


def linear16_round_trip(pcm: np.ndarray) -> np.ndarray:
    """`pcm` as the gateway decodes it after the client sent it as linear16."""
    # client.to_linear16 scales by 32767, audio.Linear16Decoder divides by 32768.
    return (pcm.clip(-1.0, 1.0) * 32767).astype("<i2").astype(np.float32) / 32768.0


async def stream_finals(
    engine: LocalEngine,
    pcm: np.ndarray,
    *,
    endpointing_ms: int = 300,
    word_timings: bool = False,
    keyterms: tuple[str, ...] = (),
) -> list[FinalResult]:
    """Every final a stream gives for `pcm` fed in 50 ms frames and then closed (a stop); `keyterms` as configured."""
    config = StreamConfig(
        endpointing_ms=endpointing_ms,
        interim_results=False,
        vad_events=False,
        word_timings=word_timings,
        keyterms=keyterms,
    )
    stream = await engine.open(config)
    audio = linear16_round_trip(pcm)
    finals: list[FinalResult] = []

    async def collect() -> None:
        async for event in stream.events():
            if isinstance(event, FinalResult):
                finals.append(event)

    collector = asyncio.create_task(collect())
    for offset in range(0, len(audio), _CHUNK):
        await stream.send_audio(audio[offset : offset + _CHUNK])
    await stream.close()
    await collector
    return finals


@dataclass
class OfflineResults:
    clips: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    transcripts: list[str] = field(default_factory=list)
    finals: list[list[str]] = field(default_factory=list)
    final_decode_s: list[float] = field(default_factory=list)  # run time of every final decode job


def run_offline(
    clips: Sequence[Clip], settings: LocalSettings | None = None, keyterms: tuple[str, ...] = ()
) -> OfflineResults:
    """Stream every clip as the benchmark's endpointing pass does; collect finals and final decode times.

    Args:
        settings: the local engine's options; None = `LocalSettings()` (defaults and environment).
        keyterms: configured on every stream (a glossary's effect on WER and decode time).
    """
    results = OfflineResults()

    class FinalDecodeTimes(EngineObserver):
        def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
            if kind == "final":
                results.final_decode_s.append(run_s)

    async def main() -> None:
        engine = LocalEngine(settings)
        engine.observe(FinalDecodeTimes())
        await engine.start()
        try:
            for clip in clips:
                finals = await stream_finals(engine, bench_stream(clip), keyterms=keyterms)
                results.clips.append(clip.name)
                results.references.append(clip.reference)
                results.finals.append([f.transcript for f in finals])
                results.transcripts.append(" ".join(f.transcript for f in finals if f.transcript))
        finally:
            await engine.stop()

    asyncio.run(main())
    return results
