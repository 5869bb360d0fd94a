"""Tiny raw-audio engines for gateway tests: their transcripts say which bytes they heard, so tests can check them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np

from voxrelay.engines import base
from voxrelay.engines.base import Capabilities, Engine, EngineStream, StreamConfig


class QueuedStream(EngineStream):
    """A stream whose events go through the engines' own outbox: `emit` one, `end` the stream; `abort` ends it."""

    def __init__(self) -> None:
        self._outbox = base.EventOutbox()

    def emit(self, event: base.EngineEvent) -> None:
        self._outbox.put(event)

    def end(self) -> None:
        self._outbox.end()

    async def abort(self) -> None:
        self.end()

    def events(self) -> AsyncIterator[base.EngineEvent]:
        return self._outbox.events()


class CountingStream(QueuedStream):
    """One final per `chunk` bytes, and one for the rest on finalize/close."""

    def __init__(self, chunk: int) -> None:
        super().__init__()
        self.chunk = chunk
        self.pending = 0
        self.total = 0

    def _final(self) -> None:
        if self.pending:
            start = (self.total - self.pending) / 32000
            words = f"bytes {self.total - self.pending} to {self.total}"
            self.emit(base.FinalResult(words, start, self.total / 32000, speech_final=True))
            self.pending = 0

    async def send_audio(self, audio: bytes | np.ndarray) -> None:
        assert isinstance(audio, bytes)
        self.pending += len(audio)
        self.total += len(audio)
        while self.pending >= self.chunk:
            extra = self.pending - self.chunk
            self.pending, self.total = self.chunk, self.total - extra
            self._final()
            self.pending, self.total = extra, self.total + extra

    async def finalize(self) -> None:
        self._final()

    async def close(self) -> None:
        self._final()
        self.end()


class CountingEngine(Engine):
    """Takes the client's bytes (no decoding); transcripts name the byte ranges they cover."""

    name = "counting"
    capabilities = Capabilities(raw_audio=True)

    def __init__(self, chunk: int = 16000) -> None:
        super().__init__()
        self.chunk = chunk

    async def start(self) -> None:
        self.started = True

    async def open(self, config: StreamConfig) -> EngineStream:
        return CountingStream(self.chunk)


ECHO_BYTES_PER_S = 32000  # the byte rate EchoEngine assumes: linear16, 16 kHz mono


class EchoStream(QueuedStream):
    def __init__(self) -> None:
        super().__init__()
        self.heard = 0
        self.hang = False

    async def send_audio(self, audio: bytes | np.ndarray) -> None:
        assert isinstance(audio, bytes)
        if audio.startswith(b"FAIL"):
            self.emit(base.EngineError("engine_error", "the echo engine broke"))
            self.end()
            return
        self.hang = self.hang or audio.startswith(b"HANG")
        self.heard += len(audio)
        self.emit(base.InterimResult(f"heard {self.heard}", 0.0, self.heard / ECHO_BYTES_PER_S))

    def _final(self, from_finalize: bool = False) -> None:
        end = self.heard / ECHO_BYTES_PER_S
        self.emit(base.FinalResult(f"heard {self.heard} bytes", 0.0, end, True, from_finalize=from_finalize))

    async def finalize(self) -> None:
        self._final(from_finalize=True)

    async def close(self) -> None:
        if self.hang:
            return
        self._final()
        self.end()


class EchoEngine(Engine):
    """Raw audio in; says what it heard: an interim per frame, a final on finalize/close (bytes counted).

    Audio starting with FAIL makes the stream fail; audio starting with HANG makes close() never flush.
    """

    name = "echo"
    capabilities = Capabilities(raw_audio=True)

    async def start(self) -> None:
        self.started = True

    async def open(self, config: StreamConfig) -> EngineStream:
        return EchoStream()
