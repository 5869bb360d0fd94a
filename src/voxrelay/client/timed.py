"""Stream audio and record every server message with its arrival time: the tool of the tests and benchmarks.

Not the client API (that is `connect` and `transcribe`): this one keeps raw JSON
messages and timings, sends exactly the frames it is given, and never raises on an
`error` message, because the tests assert on those.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import websockets

__all__ = ["StreamResult", "stream_audio"]


@dataclass
class StreamResult:
    """Everything a session said, with arrival times (seconds since the first audio was sent)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    audio_done_at: float = 0.0  # when the last audio frame was sent
    stop_sent_at: float | None = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [msg for msg in self.messages if msg.get("type") == kind]

    @property
    def finals(self) -> list[str]:
        return [msg["transcript"] for msg in self.of_type("final_transcript")]

    @property
    def transcript(self) -> str:
        return " ".join(t for t in self.finals if t)


async def stream_audio(
    url: str,
    audio: bytes,
    *,
    configure: dict[str, Any] | None = None,
    bytes_per_second: int = 32000,
    chunk_bytes: int = 1600,
    speed: float = 1.0,
    stop: bool = True,
    on_message: Any = None,
    headers: dict[str, str] | None = None,
) -> StreamResult:
    """Send `audio` (already encoded as `configure` declares) and collect messages until close."""
    result = StreamResult()
    async with websockets.connect(url, max_size=None, additional_headers=headers) as ws:
        started = time.perf_counter()

        async def receive() -> None:
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    result.messages.append(message)
                    result.times.append(time.perf_counter() - started)
                    if on_message is not None:
                        on_message(message)
            except websockets.ConnectionClosed:
                pass
            result.close_code = ws.close_code
            result.close_reason = ws.close_reason or ""

        receiver = asyncio.create_task(receive())
        try:
            if configure is not None:
                await ws.send(json.dumps({"action": "configure", **configure}))
            for offset in range(0, len(audio), chunk_bytes):
                await ws.send(audio[offset : offset + chunk_bytes])
                if speed > 0:
                    due = (offset + chunk_bytes) / bytes_per_second / speed
                    delay = due - (time.perf_counter() - started)
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing real-time audio, not waiting on an event
            result.audio_done_at = time.perf_counter() - started
            if stop:
                await ws.send(json.dumps({"action": "stop"}))
                result.stop_sent_at = time.perf_counter() - started
        except websockets.ConnectionClosed:
            pass
        await receiver
    return result
