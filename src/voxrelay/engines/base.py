"""The engine interface: what every speech-to-text engine implements, and the events it yields.

An `Engine` is created once per server process (it holds the shared model or the
upstream settings); `Engine.open` returns one `EngineStream` per session. Engines
never touch client sockets: they take audio in and yield `EngineEvent`s out, and
the gateway (`voxrelay.server`) maps those onto a client protocol.

Call order for a stream:
    stream = await engine.open(options)
    await stream.send_audio(chunk)      # any number of times
    await stream.finalize()             # optional, any number of times
    await stream.close()                # end of audio: flush every final, then `events()` ends
    # or `await stream.abort()` when the client is gone: drop everything, release resources.
Events are read concurrently with `async for event in stream.events()`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import ClassVar, Literal, Union

import numpy as np

__all__ = [
    "Engine",
    "EngineError",
    "EngineEvent",
    "EngineWarning",
    "EngineFailure",
    "EngineStream",
    "FinalResult",
    "InterimResult",
    "SpeechStarted",
    "StreamConfig",
    "UtteranceEnd",
    "Word",
]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Everything an engine needs to open one stream.

    `encoding`, `sample_rate` and `channels` describe the audio `send_audio` will get:
    for engines with `wants_raw_audio`, the client's bytes as they came (linear16 or a
    webm/ogg container); otherwise float32 mono PCM at the engine's `sample_rate`.
    """

    encoding: Literal["linear16", "webm", "ogg", "opus", "ogg-opus", "pcm_f32"] = "pcm_f32"
    sample_rate: int = 16000
    channels: int = 1
    model: str | None = None
    language: str | None = None
    interim_results: bool = True
    endpointing_ms: int = 300
    utterance_end_ms: int | None = None
    vad_events: bool = True
    punctuate: bool = True
    smart_format: bool = False
    keyterms: tuple[str, ...] = ()
    word_timings: bool = False  # per-word start/end/confidence in results (costs an alignment pass locally)


# Events an engine yields. Times are seconds from the start of the stream's audio.


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str


@dataclass(frozen=True, slots=True)
class InterimResult:
    transcript: str
    start: float
    end: float
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class FinalResult:
    """Committed text; later finals never repeat or overlap it."""

    transcript: str
    start: float
    end: float
    speech_final: bool
    from_finalize: bool = False
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    timestamp: float


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    last_word_end: float


@dataclass(frozen=True, slots=True)
class EngineError:
    """A failure in the engine; `fatal` ends the stream (no more events follow)."""

    code: Literal["engine_unavailable", "engine_error", "unsupported_audio", "bad_request", "limit_exceeded"]
    message: str
    fatal: bool = True


@dataclass(frozen=True, slots=True)
class EngineWarning:
    """Something the client should know that does not end the stream (e.g. `reconnecting` upstream)."""

    code: str
    message: str


EngineEvent = Union[InterimResult, FinalResult, SpeechStarted, UtteranceEnd, EngineError, EngineWarning]


class EngineFailure(Exception):
    """Raised by `Engine.start` or `Engine.open` when the engine cannot serve; message is for people."""

    def __init__(self, message: str, code: str = "engine_unavailable") -> None:
        super().__init__(message)
        self.code = code


class EngineStream(abc.ABC):
    """One session's stream through an engine."""

    @abc.abstractmethod
    async def send_audio(self, audio: bytes | np.ndarray) -> None:
        """Queue audio (raw bytes, or float32 mono PCM for engines that decode nothing)."""

    @abc.abstractmethod
    async def finalize(self) -> None:
        """Ask for everything sent so far to come back as final; returns once queued."""

    @abc.abstractmethod
    async def close(self) -> None:
        """End of audio: every remaining final is yielded, then `events()` ends."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Stop at once and release everything; `events()` ends without flushing."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[EngineEvent]:
        """Events in order; ends after `close()` has flushed, after `abort()`, or after a fatal error."""


class Engine(abc.ABC):
    """A speech-to-text engine shared by every session of a server process."""

    name: ClassVar[str]
    # True: streams get the client's audio bytes untouched (the engine or its upstream decodes).
    # False: the gateway decodes and resamples to float32 mono PCM at `sample_rate`.
    wants_raw_audio: ClassVar[bool] = False
    sample_rate: ClassVar[int] = 16000

    @abc.abstractmethod
    async def start(self) -> None:
        """Load models or check credentials; raise `EngineFailure` with a clear message if unusable."""

    @abc.abstractmethod
    async def open(self, config: StreamConfig) -> EngineStream:
        """Open a stream; raise `EngineFailure` if the engine cannot take it now."""

    async def stop(self) -> None:
        """Release process-wide resources. Default: nothing to release."""

    @property
    def ready(self) -> bool:
        """True once `start` has succeeded."""
        return getattr(self, "_started", False)

    @property
    def model_name(self) -> str:
        """The default model this engine runs, for reports and `/v1/listen` metadata."""
        return getattr(self, "_model_name", self.name)
