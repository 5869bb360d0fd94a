"""Tiny raw-audio engines for gateway tests: their transcripts say which bytes they heard, so tests can check them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import numpy as np

from voxrelay.engines import base
from voxrelay.engines.base import Capabilities, Engine, EngineStream, StreamConfig
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript


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


FILE_BYTES_PER_S = 32000  # the byte rate the file fakes assume: linear16, 16 kHz mono


class FileCountingEngine(Engine):
    """Transcribes files without listening: one segment per `chunk` bytes (or PCM samples), text naming its range.

    Segment i covers bytes [i*chunk, (i+1)*chunk) and says "Bytes A to B." with two words timed inside
    it, so a test can compute every expected field from the upload's length alone. Uploads with FAIL
    in their first 64 bytes (e.g. the first samples of a WAV) raise `bad_audio`, DOWN raise
    `engine_unavailable`, and HOLD wait until `release` is set (for concurrency limits; `holding`
    counts the waiting jobs).
    """

    name = "file-counting"
    capabilities = Capabilities(raw_audio=True, file_transcription=True)

    def __init__(self, chunk: int = 16000, unit_per_s: int = FILE_BYTES_PER_S) -> None:
        super().__init__()
        self.chunk = chunk
        self.unit_per_s = unit_per_s
        self.requests: list[FileRequest] = []
        self.release = threading.Event()
        self.holding = 0

    async def start(self) -> None:
        self.started = True

    async def open(self, config: StreamConfig) -> EngineStream:
        raise base.EngineFailure("files only")

    async def transcribe_file(self, request: FileRequest) -> FileTranscript:
        self.requests.append(request)
        audio = request.audio
        if isinstance(audio, bytes):
            if b"FAIL" in audio[:64]:
                raise base.EngineFailure("the fake could not decode this file", code="bad_audio")
            if b"DOWN" in audio[:64]:
                raise base.EngineFailure("the fake's upstream is down", code="engine_unavailable")
            if b"HOLD" in audio[:64]:
                self.holding += 1
                try:
                    await asyncio.to_thread(self.release.wait, 30)
                finally:
                    self.holding -= 1
        total = len(audio)
        return FileTranscript(request.language or "en", total / self.unit_per_s, self._segments(total, request))

    async def _segments(self, total: int, request: FileRequest) -> AsyncIterator[FileSegment]:
        for i, first in enumerate(range(0, total, self.chunk)):
            last = min(first + self.chunk, total)
            start, end = first / self.unit_per_s, last / self.unit_per_s
            words: tuple[base.Word, ...] = ()
            if request.word_timings:
                third = (end - start) / 3
                words = (
                    base.Word("bytes", start, start + third, 0.9, "Bytes"),
                    base.Word(f"{first}-{last}", start + third, end, 0.8, f"{first}-{last}."),
                )
            yield FileSegment(i, start, end, f"Bytes {first}-{last}.", words)


class PcmFileEngine(FileCountingEngine):
    """`FileCountingEngine` for an engine that takes PCM: the gateway decodes the upload to 16 kHz float32."""

    name = "pcm-file-counting"
    capabilities = Capabilities(raw_audio=False, file_transcription=True)

    def __init__(self) -> None:
        super().__init__(chunk=16000, unit_per_s=16000)  # one segment per second of decoded audio
