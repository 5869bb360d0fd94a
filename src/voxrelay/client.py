"""A `/stt-stream` client: stream an audio file and collect what the server says.

Used by `voxrelay transcribe`, the tests and the benchmarks. Any file PyAV can read
is decoded, mixed to mono and resampled with soxr to 16 kHz linear16, then sent in
50 ms frames at `speed` times real time (0 = as fast as possible).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import websockets

from voxrelay.audio.pcm import Resampler, to_mono

__all__ = ["StreamResult", "load_audio", "stream_audio", "transcribe_file"]


def load_audio(path: str, rate: int = 16000) -> np.ndarray:
    """Decode any audio file to float32 mono at `rate`."""
    pieces: list[np.ndarray] = []
    resampler: Resampler | None = None
    with av.open(path) as container:
        if not container.streams.audio:
            raise OSError(f"{path}: no audio track")
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            samples = samples.T if frame.format.is_planar else samples.reshape(-1, len(frame.layout.channels))
            if samples.dtype == np.int16:
                samples = samples.astype(np.float32) / 32768.0
            elif samples.dtype == np.int32:
                samples = samples.astype(np.float32) / 2147483648.0
            resampler = resampler or Resampler(frame.sample_rate, rate)
            pieces.append(resampler.process(to_mono(samples.astype(np.float32, copy=False))))
    if resampler is not None:
        pieces.append(resampler.process(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def to_linear16(pcm: np.ndarray) -> bytes:
    return (pcm.clip(-1.0, 1.0) * 32767).astype("<i2").tobytes()


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


async def transcribe_file(
    path: str, url: str, *, speed: float = 1.0, json_lines: bool = False, endpointing: int = 300
) -> str:
    """Stream a file through a gateway; show interims in place on a TTY; return the full text."""
    pcm = load_audio(path)
    tty = sys.stdout.isatty() and not json_lines
    width = 0

    def show(message: dict[str, Any]) -> None:
        nonlocal width
        if json_lines:
            print(json.dumps(message), flush=True)
            return
        kind = message.get("type")
        if kind == "error":
            print(f"\nerror ({message.get('code')}): {message.get('message')}", file=sys.stderr)
        if not tty:
            return
        if kind == "interim_transcript":
            line = message["transcript"][-(100):]
            sys.stdout.write("\r" + line.ljust(width))
            width = len(line)
        elif kind == "final_transcript" and message["transcript"]:
            sys.stdout.write("\r" + message["transcript"].ljust(width) + "\n")
            width = 0
        sys.stdout.flush()

    try:
        result = await stream_audio(
            url,
            to_linear16(pcm),
            configure={"audio_format": {"encoding": "linear16", "sample_rate": 16000, "channels": 1},
                       "endpointing": endpointing},
            speed=speed,
            on_message=show,
        )
    except OSError as exc:
        raise ConnectionError(f"cannot connect to {url}: {exc}") from exc
    errors = result.of_type("error")
    if errors and not result.of_type("stopped"):
        raise RuntimeError(f"{errors[-1].get('code')}: {errors[-1].get('message')}")
    if tty:
        print()
    return result.transcript
