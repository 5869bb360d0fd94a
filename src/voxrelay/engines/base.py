"""The engine interface: what every speech-to-text engine implements, and the events it yields.

An `Engine` is created once per server process (it holds the shared model or the
upstream settings); `Engine.open` returns one `EngineStream` per session. Engines
never touch client sockets: they take audio in and yield `EngineEvent`s out, and
the gateway (`voxrelay.gateway.app`) maps those onto a client protocol.

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
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from voxrelay.engines.files import FileRequest, FileTranscript
from voxrelay.protocol.events import (
    EngineError,
    EngineEvent,
    EngineWarning,
    FinalResult,
    InterimResult,
    SpeechStarted,
    StreamConfig,
    UtteranceEnd,
    Word,
)
from voxrelay.tasks import Mailbox

__all__ = [
    "Capabilities",
    "Engine",
    "EngineObserver",
    "EngineError",
    "EngineEvent",
    "EngineWarning",
    "EngineFailure",
    "EngineStream",
    "EventOutbox",
    "EventSink",
    "FinalResult",
    "InterimResult",
    "SpeechStarted",
    "StreamConfig",
    "UtteranceEnd",
    "Word",
]


class EngineFailure(Exception):
    """Raised by `Engine.start` or `Engine.open` when the engine cannot serve; message is for people."""

    def __init__(self, message: str, code: str = "engine_unavailable") -> None:
        super().__init__(message)
        self.code = code


class EngineStream(abc.ABC):
    """One session's stream through an engine."""

    @abc.abstractmethod
    async def send_audio(self, audio: bytes | np.ndarray) -> None:
        """Queue audio (raw bytes, or float32 mono PCM for engines that decode nothing).

        A stream may send it on from the caller's task instead (the Deepgram engine, while its
        sender is idle): then this awaits only while the upstream takes no more.
        """

    @abc.abstractmethod
    async def finalize(self) -> None:
        """Ask for everything sent so far to come back as final; returns once queued.

        Every finalize is answered, in order, by finals of which the last has `from_finalize=True`
        (an empty one when nothing was pending): a client that ends a turn (OpenAI Realtime's
        commit) learns from it that the turn's text is complete.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """End of audio: every remaining final is yielded, then `events()` ends."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Stop at once and release everything; `events()` ends without flushing."""

    @abc.abstractmethod
    def events(self) -> AsyncIterator[EngineEvent]:
        """Events in order; ends after `close()` has flushed, after `abort()`, or after a fatal error."""

    def push_events(self, sink: EventSink) -> bool:
        """Deliver the events to `sink` from now on, instead of through `events()`; False: this stream
        cannot (the default), read `events()`. Call it once, right after `open`.

        A relay's stream reads its upstream on a task of its own; pushing from that task saves
        the task switch per event that a reader of `events()` costs (docs/benchmarks.md, issue 17).
        """
        return False


class EventSink(Protocol):
    """Where a stream pushes its events (`EngineStream.push_events`), in order, then its end once."""

    def on_event(self, event: EngineEvent) -> None:
        """An event from a timer or a task that must not wait for the client: queue what it asks for."""

    async def on_event_now(self, event: EngineEvent) -> None:
        """An event from the stream's reader: its messages may be sent at once, from the caller's task."""

    def on_end(self) -> None:
        """No more events (after the flush that `close()` asked for, an abort or a fatal error)."""


class EventOutbox:
    """The queue behind `EngineStream.events()`: put events in order, then `end()` it once.

    Every engine's stream produces events from its own tasks and yields them to one reader;
    this is that hand-off, so no engine writes its own end-of-stream sentinel.
    """

    def __init__(self) -> None:
        self._queue: Mailbox[EngineEvent | None] = Mailbox()  # one reader (tasks.Mailbox: cheaper per get)
        self._sink: EventSink | None = None

    def push_to(self, sink: EventSink) -> None:
        """Deliver to `sink` from now on (what was put before goes first), not through `events()`."""
        for item in self._queue.take_all():
            if item is None:
                sink.on_end()
            else:
                sink.on_event(item)
        self._sink = sink

    def put(self, event: EngineEvent) -> None:
        if self._sink is not None:
            self._sink.on_event(event)
        else:
            self._queue.put_nowait(event)

    def put_now(self, event: EngineEvent) -> Coroutine[Any, Any, None]:
        """`put`, from the stream's reader (await it): a sink may send the event's messages before the
        await returns. The sink's own coroutine is handed back, so a relayed result crosses no
        coroutine layer here (issue 17)."""
        if self._sink is not None:
            return self._sink.on_event_now(event)
        self._queue.put_nowait(event)
        return _nothing()

    def end(self) -> None:
        """No more events: the reader's iteration stops after those already put."""
        if self._sink is not None:
            self._sink.on_end()
        else:
            self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[EngineEvent]:
        while (event := await self._queue.get()) is not None:
            yield event


async def _nothing() -> None:
    """What `EventOutbox.put_now` hands back once the event is queued."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What an engine needs from the gateway and what it honours; read instead of probing the engine.

    Attributes:
        raw_audio: True: streams get the client's bytes untouched (the engine or its upstream
            decodes them). False: the gateway decodes and resamples to float32 mono PCM at
            `sample_rate`.
        sample_rate: the PCM rate for engines that take PCM.
        min_endpointing_ms: the smallest endpointing the engine honours; a smaller request is
            raised to it (the local engine's VAD needs 200 ms to call a pause; Deepgram any).
        word_timings: per-word times and confidences can be asked for.
        file_transcription: `Engine.transcribe_file` works (see `engines.files`).
    """

    raw_audio: bool = False
    sample_rate: int = 16000
    min_endpointing_ms: int = 0
    word_timings: bool = True
    file_transcription: bool = False


class EngineObserver:
    """Hooks an engine calls to report what the gateway records as metrics.

    Every method does nothing by default; the gateway passes a subclass to `Engine.observe`.
    Methods may be called from a worker thread (`job_timing`), so they must only record.
    """

    def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        """One inference job ran: `wait_s` queued, `run_s` decoding (the local engine; worker thread)."""

    def upstream_reconnect(self, result: Literal["ok", "failed", "gave_up"]) -> None:
        """One reconnect attempt of an upstream stream ended with `result` (the Deepgram engine)."""


class Engine(abc.ABC):
    """A speech-to-text engine shared by every session of a server process.

    Subclasses set `name` and `capabilities`, call `super().__init__(model_name)`, and set
    `self.started = True` once `start` has succeeded.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, model_name: str | None = None) -> None:
        self.model_name = model_name or self.name  # the default model this engine runs, for reports and metadata
        self.started = False
        self.observer = EngineObserver()

    def observe(self, observer: EngineObserver) -> None:
        """Route this engine's reports (job timings, reconnects) to `observer`; call before `start`."""
        self.observer = observer

    @abc.abstractmethod
    async def start(self) -> None:
        """Load models or check credentials; raise `EngineFailure` with a clear message if unusable."""

    @abc.abstractmethod
    async def open(self, config: StreamConfig) -> EngineStream:
        """Open a stream; raise `EngineFailure` if the engine cannot take it now."""

    async def transcribe_file(self, request: FileRequest) -> FileTranscript:
        """Transcribe one whole recording (see `engines.files`); raise `EngineFailure` if unable.

        Engines that set `Capabilities.file_transcription` override this. Segments come from
        `FileTranscript.segments` as they are decoded; closing that iterator early releases the
        work not yet done.
        """
        raise EngineFailure(f"the {self.name} engine cannot transcribe files", code="unsupported")

    async def stop(self) -> None:  # noqa: B027 - optional hook: most engines hold nothing to release
        """Release process-wide resources. Default: nothing to release."""

    @property
    def ready(self) -> bool:
        """True once `start` has succeeded."""
        return self.started
