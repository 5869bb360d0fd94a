"""`transcribe(path_or_bytes)`: a whole recording through a gateway, as a `Transcript` — for scripts and notebooks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voxrelay.client.audio import load_audio, to_linear16
from voxrelay.client.live import DEFAULT_URL, connect
from voxrelay.protocol.messages import FinalTranscript, ServerMessage

__all__ = ["Segment", "Transcript", "atranscribe", "transcribe"]

_FRAME_S = 0.5  # seconds of audio a frame: 16 kB of linear16, well under the 64 KiB frame limit


@dataclass(frozen=True, slots=True)
class Segment:
    """One final of the session: its text and where it lies in the recording (seconds)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Transcript:
    """What the gateway heard: `text` (the finals joined) and the timed `segments`."""

    segments: tuple[Segment, ...] = field(default_factory=tuple)
    duration: float = 0.0  # seconds of audio sent

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)

    def __str__(self) -> str:
        return self.text


def transcribe(
    source: str | Path | bytes,
    url: str = DEFAULT_URL,
    *,
    api_key: str | None = None,
    token: str | None = None,
    speed: float | None = None,
    on_message: Callable[[ServerMessage], None] | None = None,
    **options: Any,
) -> Transcript:
    """Transcribe a recording (a path, or the bytes of an audio file) through the gateway at `url`.

    Synchronous; inside a running event loop (a notebook) it runs on a worker thread, so it
    can be called the same way everywhere. `speed` is how fast the audio is sent: 0 is as
    fast as the gateway takes it (the default with an API key, sent with `?batch=true`, or
    with auth off), 1 is real time (the default with a token, which may not send faster).
    `options` are `configure` options (`language`, `keyterms`, `endpointing`, ...).
    Raises a `ClientError` subclass: `AudioFileError`, `GatewayUnreachable`,
    `GatewayRefused` or `SessionError`.
    """
    call = atranscribe(source, url, api_key=api_key, token=token, speed=speed, on_message=on_message, **options)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(call)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop runs here already (Jupyter)
        return pool.submit(asyncio.run, call).result()


async def atranscribe(
    source: str | Path | bytes,
    url: str = DEFAULT_URL,
    *,
    api_key: str | None = None,
    token: str | None = None,
    speed: float | None = None,
    on_message: Callable[[ServerMessage], None] | None = None,
    **options: Any,
) -> Transcript:
    """`transcribe` for async code."""
    audio = to_linear16(load_audio(source))  # decoded before connecting: a bad file costs no session
    if speed is None:
        speed = 1.0 if token else 0.0
    frame = int(32000 * _FRAME_S)
    segments: list[Segment] = []
    async with connect(url, api_key=api_key, token=token, batch=bool(api_key) and speed != 1.0, **options) as stream:

        async def send() -> None:
            started = time.perf_counter()
            for offset in range(0, len(audio), frame):
                await stream.send(audio[offset : offset + frame])
                if speed:
                    due = (offset + frame) / 32000 / speed
                    await asyncio.sleep(max(0.0, due - (time.perf_counter() - started)))  # pacing
            await stream.stop()

        if on_message is not None:
            on_message(stream.ready)
        sender = asyncio.create_task(send())
        try:
            async for message in stream:
                if on_message is not None:
                    on_message(message)
                if isinstance(message, FinalTranscript) and message.transcript:
                    segments.append(Segment(message.transcript, message.start, message.end))
        finally:
            if not sender.done():
                sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
    return Transcript(tuple(segments), len(audio) / 32000)
