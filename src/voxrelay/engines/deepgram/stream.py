"""One session's Deepgram Live stream: the upstream connection, its sender, reader and reconnects.

Created by `DeepgramEngine.open`, which calls `connect()`; then the gateway calls
`send_audio`/`finalize` any number of times, `close()` once (or `abort()`), and reads
`events()` until it ends. One task (`_run`) owns the upstream WebSocket:

- `send_audio`/`finalize`/`close` go to the `sender.UpstreamSender` (its task sends them in
  order; an audio frame goes out from the caller's task while it holds nothing), so Finalize
  and CloseStream always follow the audio sent before them. After `keepalive_s` without
  anything to send (a silent client), the connection's `Watchdog` queues KeepAlive, so
  Deepgram never closes an idle stream with NET-0001; the same timer fails a send that an
  upstream which stopped reading holds for `send_timeout_s`.
- The reader maps the transport's JSON messages to engine events (`events.engine_event`) and
  delivers them (to a sink that `push_events` gave it, from the reader's own task).
  Deepgram answers Finalize only with audio buffered; one unanswered for `_FINALIZE_ANSWER_S` gets an
  empty `from_finalize` final (the contract of `EngineStream.finalize`); a later answer is a plain final.
- `close()` sends Finalize then CloseStream and keeps reading until Deepgram closes the
  socket (at most `close_timeout_s`), so the last words are never lost (deepgram-js-sdk
  #198, pipecat #5347). `abort()` cancels the task, which closes the socket on its way out.
- Retryable failures (`failures.is_retryable`) reconnect with full-jitter backoff, at most
  `max_reconnects` times in a row; the client gets an `EngineWarning` (`reconnecting`).
  Raw audio (linear16, G.711) not yet covered by a final is kept (`replay.ReplayBuffer`, at most
  `replay_s`, drop-oldest) and re-sent, and the new connection's timestamps are shifted
  back into session time. For webm/ogg the container header is re-sent first, then the
  stream goes on (the audio in flight is the gap).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any

import numpy as np
from websockets.asyncio.client import ClientConnection

from voxrelay.engines.base import (
    EngineError,
    EngineEvent,
    EngineFailure,
    EngineStream,
    EngineWarning,
    EventOutbox,
    EventSink,
    FinalResult,
    StreamConfig,
)
from voxrelay.engines.deepgram import failures
from voxrelay.engines.deepgram.events import engine_event, error_text, shifted
from voxrelay.engines.deepgram.replay import HeaderCapture, ReplayBuffer, backoff_s
from voxrelay.engines.deepgram.sender import CLOSE, FINALIZE, UpstreamSender
from voxrelay.engines.deepgram.transport import WebSocketTransport
from voxrelay.engines.deepgram.watchdog import Watchdog
from voxrelay.protocol import json_text
from voxrelay.tasks import cancel_and_wait

if TYPE_CHECKING:
    from voxrelay.engines.deepgram.engine import DeepgramEngine

__all__ = ["DeepgramStream"]

log = logging.getLogger(__name__)

_FINALIZE_ANSWER_S = 2.0


class DeepgramStream(EngineStream):
    """One session's upstream connection. Created by `DeepgramEngine.open`."""

    def __init__(
        self, engine: DeepgramEngine, options: dict[str, Any], config: StreamConfig
    ) -> None:
        self._engine = engine
        self._word_timings = config.word_timings
        self._raw = config.encoding in ("linear16", "mulaw", "alaw")  # raw samples: replayed after a reconnect
        frame = (2 if config.encoding == "linear16" else 1) * config.channels
        self._replay = ReplayBuffer(config.sample_rate * frame, engine.replay_s, frame) if self._raw else None
        self._header = HeaderCapture(config.encoding)  # webm/ogg: the header is re-sent first after a reconnect
        self._offset_s = 0.0  # session time of the current connection's t=0
        self._last_end = 0.0  # latest result end, in session time (the offset for containers)
        self._heard = False  # the current connection answered something
        self.reconnects = 0
        self._options = options
        self._sender = UpstreamSender(engine.control, self._record)  # sent on websockets' connection itself
        self._outbox = EventOutbox()
        self._closing = False  # close() was called: CloseStream follows the queued audio
        self._finished = False  # no more events will be produced
        self._aborted = False
        self._transport: WebSocketTransport | None = None  # the current connection's (claimed as it is made)
        self._task: asyncio.Task[None] | None = None
        self._unanswered: list[asyncio.TimerHandle] = []  # Finalizes sent, oldest first, each with its deadline

    async def connect(self) -> None:
        """Open the upstream socket; raises `EngineFailure` with a clear message if Deepgram refuses."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._engine.track(self, True)
        self._task = asyncio.create_task(self._run(ready), name="deepgram-stream")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self._engine.open_timeout_s)
        except asyncio.TimeoutError:
            await self.abort()
            wait = self._engine.open_timeout_s
            raise EngineFailure(f"Deepgram did not answer within {wait:g} s; try again later") from None
        except BaseException:
            await self.abort()
            raise

    # EngineStream interface.

    def send_audio(self, audio: bytes | np.ndarray) -> Coroutine[Any, Any, None]:
        """Sent from the caller's task while the sender holds nothing, else queued (`sender.UpstreamSender`).

        Returns the sender's coroutine for the caller to await, not one of its own: a coroutine
        layer less per relayed frame (issue 17).
        """
        if not isinstance(audio, bytes):
            raise TypeError("the deepgram engine takes the client's audio bytes")
        if not self._closing and not self._finished and audio:
            return self._sender.send_audio(audio)
        return _nothing()

    async def finalize(self) -> None:
        if not self._closing and not self._finished:
            self._sender.queue(FINALIZE)
            self._unanswered.append(asyncio.get_running_loop().call_later(_FINALIZE_ANSWER_S, self._no_answer))

    def _no_answer(self) -> None:
        self._unanswered.pop(0)
        self._emit(FinalResult("", self._last_end, self._last_end, speech_final=True, from_finalize=True))

    async def close(self) -> None:
        if not self._closing and not self._finished:
            self._closing = True
            self._sender.queue(CLOSE)

    async def abort(self) -> None:
        self._aborted = True
        if self._transport is not None:
            self._transport.abort()  # at once: no close handshake, no flush
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._end()

    def events(self) -> AsyncIterator[EngineEvent]:
        return self._outbox.events()

    def push_events(self, sink: EventSink) -> bool:
        self._outbox.push_to(sink)  # the upstream reader delivers its results itself (`_read_loop`)
        return True

    @property
    def dropped_audio_s(self) -> float:
        """Audio that fell out of the replay buffer before a final covered it (lost words)."""
        return self._replay.dropped_bytes / self._replay.bytes_per_s if self._replay else 0.0

    # The stream's task: owns the upstream connection from handshake to close.

    async def _run(self, ready: asyncio.Future[None]) -> None:
        engine = self._engine
        failures_in_a_row = 0
        try:
            while True:
                retry: BaseException | None = None
                self._heard = False
                try:
                    url, headers = await engine.upstream_target(self._options)  # the SDK's, once per options
                    transport = self._transport = WebSocketTransport(url, headers, proxy=engine.proxy)
                    try:
                        ws = await transport.connect(engine.open_timeout_s)
                        backlog: list[bytes] = []
                        if ready.done():
                            backlog = self._resume()
                        else:
                            ready.set_result(None)
                        retry = await self._serve(ws, transport, backlog)
                    finally:
                        await transport.close()  # as the SDK's connection context did on its way out
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not ready.done():
                        ready.set_exception(self._handshake_failure(exc))
                        return
                    if not failures.is_retryable(exc):
                        log.warning("deepgram stream failed: %s", engine.scrub(repr(exc)))
                        failure = self._handshake_failure(exc)
                        self._emit(EngineError("engine_error", engine.scrub(f"the Deepgram stream failed: {failure}")))
                        return
                    retry = exc
                if retry is None or self._aborted:
                    return
                # A connection that answered anything worked: the attempt budget starts again.
                failures_in_a_row = 1 if self._heard else failures_in_a_row + 1
                if failures_in_a_row > 1:
                    engine.report_reconnect("failed")  # the previous attempt connected to nothing useful
                if not await self._before_reconnect(retry, failures_in_a_row):
                    return
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        finally:
            engine.track(self, False)
            self._end()

    async def _before_reconnect(self, why_exc: BaseException, attempt: int) -> bool:
        """Warn the client and back off before reconnect `attempt` (1-based); False: attempts are used up."""
        engine = self._engine
        why = failures.describe(why_exc, engine.scrub)
        if attempt > engine.max_reconnects:
            engine.report_reconnect("gave_up")
            self._emit(
                EngineError(
                    "engine_error",
                    f"lost the connection to Deepgram ({why}) and {engine.max_reconnects} reconnects failed",
                )
            )
            return False
        log.warning("deepgram connection lost (%s); reconnect %d of %d", why, attempt, engine.max_reconnects)
        self._emit(
            EngineWarning(
                "reconnecting",
                f"the connection to the speech service was lost ({why}); reconnecting "
                f"(attempt {attempt} of {engine.max_reconnects}); buffered audio will be re-sent",
            )
        )
        await asyncio.sleep(backoff_s(attempt - 1, engine.reconnect_base_s, engine.reconnect_cap_s))
        return True

    def _handshake_failure(self, exc: BaseException) -> EngineFailure:
        return failures.handshake_failure(exc, self._engine.scrub, self._engine.upstream_url)

    def _resume(self) -> list[bytes]:
        """A new upstream connection: what to re-send first, of what the old one may have lost."""
        self.reconnects += 1
        self._engine.reconnects += 1
        self._engine.report_reconnect("ok")
        if self._replay is not None:
            self._offset_s = self._replay.offset_s
            log.info(
                "deepgram reconnected: replaying %.2f s from %.2f s (%d bytes dropped so far)",
                len(self._replay) / self._replay.bytes_per_s,
                self._offset_s,
                self._replay.dropped_bytes,
            )
            return self._replay.chunks()  # as first sent: the upstream sees the same stream
        self._offset_s = self._last_end
        header = self._header.header
        return [header] if header is not None else []

    def _record(self, audio: bytes) -> None:
        """Audio about to be sent: kept for a replay (linear16) or for its header (containers)."""
        if self._replay is not None:
            self._replay.append(audio)
        else:
            self._header.feed(audio)

    async def _serve(
        self, ws: ClientConnection, transport: WebSocketTransport, backlog: list[bytes]
    ) -> BaseException | None:
        """Run one upstream connection (`backlog` goes first); returns the failure if it is worth a reconnect."""
        engine = self._engine
        errors: list[BaseException] = []
        clock = self._sender.start_connection()
        reader = asyncio.create_task(self._read_loop(ws, errors), name="deepgram-read")
        sender = asyncio.create_task(self._sender.run(ws, backlog), name="deepgram-send")
        watchdog = Watchdog(sender, clock, engine.keepalive_s, engine.send_timeout_s, self._sender.keep_alive)
        timed_out = False
        send_error: BaseException | None = None
        try:
            await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
            if watchdog.stalled:
                send_error = failures.Stalled(f"Deepgram stopped accepting data for {engine.send_timeout_s:g} s")
            elif sender.done() and not sender.cancelled():
                send_error = sender.exception()
            if not reader.done() and send_error is None:
                # CloseStream is sent (or the upstream is gone): read until Deepgram closes.
                done, _ = await asyncio.wait({reader}, timeout=engine.close_timeout_s)
                timed_out = not done
        finally:
            self._sender.end_connection()
            watchdog.cancel()
            if watchdog.stalled:
                transport.abort()  # an upstream that stopped reading would stall the close handshake too
            await cancel_and_wait((sender, reader))
        if send_error is not None:
            self._emit(failures.send_error(send_error, engine.scrub))
        elif timed_out:
            lost = f"Deepgram did not close the stream within {engine.close_timeout_s:g} s of the end of audio"
            self._emit(EngineError("engine_error", f"{lost}; later results are lost", fatal=False))
        elif errors:
            if failures.is_retryable(errors[0]) and not self._aborted and engine.max_reconnects > 0:
                return errors[0]
            self._emit(failures.upstream_error(errors[0], engine.scrub))
        elif not self._closing:
            self._emit(EngineError("engine_error", "Deepgram closed the stream unexpectedly"))
        return None

    async def _read_loop(self, ws: ClientConnection, errors: list[BaseException]) -> None:
        """Upstream messages -> engine events, until the upstream closes with 1000 (errors go to `errors`)."""
        try:
            async for raw in ws:
                if isinstance(raw, str):
                    event = self._on_message(json_text.loads(raw))  # orjson: ~3x json.loads (protocol/json_text.py)
                    if event is not None and not self._finished and not self._aborted:
                        await self._outbox.put_now(event)  # a pushed-to sink may send it to the client now
        except Exception as exc:  # a close other than 1000, a dropped connection, invalid JSON
            errors.append(exc)

    def _on_message(self, data: Any) -> EngineEvent | None:
        """An upstream message: the event to deliver, if any (the reader delivers it)."""
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            event = engine_event(kind, data, self._word_timings)
        except Exception as exc:  # a malformed message is skipped, never the end of the stream
            log.warning("deepgram: unreadable %s message: %s", kind, type(exc).__name__)
            return None
        self._heard = True
        if event is not None:
            if self._offset_s:  # after a reconnect only
                event = shifted(event, self._offset_s)
            if isinstance(event, FinalResult):
                if event.from_finalize and not self._unanswered:  # a late answer: its deadline passed
                    event = dataclasses.replace(event, from_finalize=False)
                elif event.from_finalize:
                    self._unanswered.pop(0).cancel()
                self._last_end = max(self._last_end, event.end)
                if self._replay is not None:
                    self._replay.acknowledge(event.end)
            return event
        if kind == "Metadata":
            log.debug("deepgram stream metadata: request %s, %s s", data.get("request_id"), data.get("duration"))
        elif kind == "Error":
            return EngineError("engine_error", self._engine.scrub(error_text(data)), fatal=False)
        return None

    def _emit(self, event: EngineEvent) -> None:
        if not self._finished and not self._aborted:
            self._outbox.put(event)

    def _end(self) -> None:
        if not self._finished:
            self._finished = True
            self._outbox.end()
            for deadline in self._unanswered:
                deadline.cancel()


async def _nothing() -> None:
    """What `send_audio` returns for audio it drops (after close, or empty)."""
