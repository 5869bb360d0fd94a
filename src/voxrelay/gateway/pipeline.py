"""The audio path of one session: client bytes -> (decode, resample) -> engine stream, in order.

Engines whose `capabilities.raw_audio` is set get the client's bytes untouched. Others get float32
mono PCM at their rate: linear16 and G.711 (mulaw/alaw) are converted inline (cheap), webm/ogg is demuxed
and decoded by a `ContainerDecoder` thread.

Raw and linear16 audio go to the engine stream directly, in the caller's order (engine
streams queue what they are given, so this does not block on the engine). Decoded
container audio comes back from the decoder thread, so there every item, audio or
control, goes through one queue to one feeder task: a finalize or close reaches the
engine after all the audio sent before it either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import numpy as np

from voxrelay.audio.container import ContainerDecoder
from voxrelay.audio.pcm import G711Decoder, Linear16Decoder
from voxrelay.engines.base import Engine, EngineStream
from voxrelay.protocol.messages import AudioFormat

__all__ = ["AudioPipeline"]

_FINALIZE = "finalize"
_CLOSE = "close"


class AudioPipeline:
    """Feeds one engine stream. Call `feed`, `finalize`, `close`; `abort` when the client is gone."""

    def __init__(
        self,
        stream: EngineStream,
        audio_format: AudioFormat,
        engine: Engine,
        on_error: Callable[[str], None],
    ) -> None:
        self.stream = stream
        self._queue: asyncio.Queue[bytes | np.ndarray | str] = asyncio.Queue()
        self._on_error = on_error
        self._loop = asyncio.get_running_loop()
        self._linear16: Linear16Decoder | G711Decoder | None = None
        self._container: ContainerDecoder | None = None
        self._closing = False
        self._feeder: asyncio.Task[None] | None = None
        self._raw = engine.capabilities.raw_audio  # the client's bytes go to the stream untouched
        if not engine.capabilities.raw_audio:
            if audio_format.is_container:
                self._container = ContainerDecoder(
                    audio_format.encoding,
                    engine.capabilities.sample_rate,
                    self._pcm_from_thread,
                    self._error_from_thread,
                )
                self._feeder = asyncio.create_task(self._feed_engine(), name="feed-engine")
            elif audio_format.encoding in ("mulaw", "alaw"):
                self._linear16 = G711Decoder(
                    audio_format.encoding, audio_format.sample_rate, engine.capabilities.sample_rate
                )
            else:
                self._linear16 = Linear16Decoder(
                    audio_format.sample_rate, audio_format.channels, engine.capabilities.sample_rate
                )

    def feed(self, data: bytes) -> Coroutine[Any, Any, None]:
        """The coroutine that feeds `data` (await it). A raw-audio engine's is its stream's own: the relay
        path has no coroutine layer here (issue 17)."""
        if self._raw and not self._closing:
            return self.stream.send_audio(data)
        return self._feed_decoded(data)

    async def _feed_decoded(self, data: bytes) -> None:
        if self._closing:
            return
        if self._container is not None:
            self._container.feed(data)
        elif self._linear16 is not None:
            pcm = self._linear16.decode(data)
            if pcm.size:
                await self.stream.send_audio(pcm)

    async def finalize(self) -> None:
        if self._closing:
            return
        if self._container is None:
            await self.stream.finalize()
            return
        # Everything fed so far must be decoded (and queued) before the finalize.
        await asyncio.to_thread(self._container.wait_idle)
        self._queue.put_nowait(_FINALIZE)

    async def close(self) -> None:
        """End of audio; the engine flushes and its events end."""
        if self._closing:
            return
        self._closing = True
        if self._container is not None:
            await asyncio.to_thread(self._container.close)
            self._queue.put_nowait(_CLOSE)
            return
        if self._linear16 is not None:
            tail = self._linear16.flush()
            if tail.size:
                await self.stream.send_audio(tail)
        await self.stream.close()

    async def abort(self) -> None:
        """The client is gone: stop feeding, release the decoder and the engine stream."""
        self._closing = True
        if self._feeder is not None:
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._feeder
        if self._container is not None:
            await asyncio.to_thread(self._container.close, 2.0)
        await self.stream.abort()

    async def _feed_engine(self) -> None:
        while True:
            item = await self._queue.get()
            if isinstance(item, str):
                if item == _FINALIZE:
                    await self.stream.finalize()
                else:
                    await self.stream.close()
                    return
            else:
                await self.stream.send_audio(item)

    def _pcm_from_thread(self, pcm: np.ndarray) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, pcm)

    def _error_from_thread(self, message: str) -> None:
        self._loop.call_soon_threadsafe(self._on_error, message)
