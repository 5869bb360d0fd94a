"""`/v1/realtime` next to `/stt-stream`: the first delta after speech onset, on the same clips and pacing.

The same audio as `local.measure_endpointing` (the clip, then 1.5 s of silence), resampled to OpenAI's
24 kHz `audio/pcm` with soxr and sent as base64 appends of 50 ms, each when its last sample would have
been spoken, under server VAD with 300 ms of silence (the /stt-stream runs' endpointing). Times are from
the first frame, as `client.stream_audio` measures them, so "first delta - speech onset" compares with
/stt-stream's "first interim - speech onset" directly. A plain WebSocket client, not the `openai` SDK,
so the benchmark needs no test dependency; the tests check the SDK speaks to the same endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
import websockets

from voxrelay.bench.common import RATE, Clip
from voxrelay.client import to_linear16

__all__ = ["RealtimeRun", "measure_realtime", "stream_realtime"]

_COMPLETED = "conversation.item.input_audio_transcription.completed"
_FRAME_S = 0.05


@dataclass
class RealtimeRun:
    """One session: events with arrival times (s from the first frame)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    @property
    def transcript(self) -> str:
        return " ".join(e["transcript"] for e in self.events if e["type"] == _COMPLETED and e["transcript"])

    def first(self, kind: str) -> float | None:
        return next((t for e, t in zip(self.events, self.times, strict=True) if e["type"] == kind), None)


async def stream_realtime(url: str, pcm: np.ndarray, endpointing_ms: int, timeout: float = 120.0) -> RealtimeRun:
    """Stream 16 kHz float PCM to `/v1/realtime` at real time; commit at the end and wait for the answer."""
    audio = to_linear16(soxr.resample(pcm, RATE, 24000).astype(np.float32))
    frame = int(48000 * _FRAME_S)
    run = RealtimeRun()
    done = asyncio.Event()
    async with websockets.connect(url, max_size=None) as ws:
        turn = {"type": "server_vad", "silence_duration_ms": endpointing_ms}
        await ws.send(json.dumps({"type": "session.update",
                                  "session": {"type": "transcription", "audio": {"input": {"turn_detection": turn}}}}))
        started = time.perf_counter()

        async def read() -> None:
            # The commit sent at the end is answered by an error (nothing left) or by the completed of the
            # last item committed before the no-op update that follows it (see tests/gateway/test_realtime.py).
            ours: str | None = None
            updates = 0
            async for raw in ws:
                event = json.loads(raw)
                run.events.append(event)
                run.times.append(time.perf_counter() - started)
                kind = event["type"]
                if kind == "input_audio_buffer.committed":
                    ours = event["item_id"]
                elif kind == "session.updated":
                    updates += 1
                refused = kind == "error" and event["error"].get("event_id") == "end"
                if refused or (updates == 2 and kind == _COMPLETED and event["item_id"] == ours):
                    done.set()

        reader = asyncio.create_task(read())
        for offset in range(0, len(audio), frame):
            chunk = base64.b64encode(audio[offset : offset + frame]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
            delay = (offset + frame) / 48000 - (time.perf_counter() - started)
            if delay > 0:
                await asyncio.sleep(delay)  # pacing real-time audio, not waiting on an event
        await ws.send(json.dumps({"type": "input_audio_buffer.commit", "event_id": "end"}))
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
        try:
            await asyncio.wait_for(done.wait(), timeout)
        finally:
            reader.cancel()
    return run


async def measure_realtime(
    url: str, clips: Sequence[Clip], endpointing_ms: int, tick: Callable[[], None]
) -> tuple[list[float], list[str]]:
    """First delta after speech onset per clip (None-free list), and each clip's completed text."""
    silence = np.zeros(int(1.5 * RATE), dtype=np.float32)
    first_deltas: list[float] = []
    transcripts: list[str] = []
    for clip in clips:
        run = await stream_realtime(url, np.concatenate([clip.trimmed(), silence]), endpointing_ms)
        first = run.first("conversation.item.input_audio_transcription.delta")
        if first is not None:
            first_deltas.append(first - clip.speech_start)
        transcripts.append(run.transcript)
        tick()
    return first_deltas, transcripts
