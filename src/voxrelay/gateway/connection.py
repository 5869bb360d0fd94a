"""The one connection runner: every endpoint's WebSocket after admission.

An endpoint module admits the handshake, builds its codec (a sans-I/O session, see
`voxrelay.protocol.codec.Codec`) and calls `Connection.run(accept)`. From there the
runner does the same for every endpoint:

- the read loop: each frame is checked against the limits (frame size, then byte rate;
  `security.limits`), then handed to the codec. Audio carried in text frames (OpenAI
  Realtime's base64 appends) comes back from `receive_text` and is checked as audio;
- engine events go to the codec: pushed by a relay's stream from its own reader
  (`EngineStream.push_events`), else read by an event pump task;
- ONE writer: whatever the codec asks for (send, open/feed/finalize/close the engine, close
  the socket) goes on one queue (`WriterQueue`) and one task carries it out in order, so a
  frame read before a stop or a drain reaches the engine first and no two tasks write at
  once. While the queue is idle, the read loop feeds its audio frame and the engine's task
  sends its messages themselves, in the writer's turn: no task switch per relayed message;
- the deadline and the idle timeout (`SessionTimers`), drain and force-close;
- the metrics (`SessionMetrics`), labelled by endpoint, and usage (`usage.SessionUsage`):
  audio seconds added up in memory; at 90 % of the key's quota a warning, at 100 % a stop
  (finals first), then error `quota_exceeded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxrelay.engines.base import EngineEvent, EngineFailure
from voxrelay.gateway.frame_intake import take_frame
from voxrelay.gateway.pipeline import AudioPipeline
from voxrelay.gateway.session_timers import SessionTimers
from voxrelay.gateway.state import Gateway
from voxrelay.gateway.writer_queue import WriterQueue
from voxrelay.ops.drain import InputCut
from voxrelay.ops.metrics import CountingStream, Outcome, SessionMetrics
from voxrelay.protocol.actions import Action, CloseEngine, CloseSocket, FeedAudio, FinalizeEngine, OpenEngine, SendText
from voxrelay.protocol.codec import Codec
from voxrelay.security.admission import Admission
from voxrelay.security.limits import Breach, FrameLimits, SessionGuard, SessionLimiter
from voxrelay.tasks import cancel_and_wait
from voxrelay.usage.session import SessionUsage, usage_outcome

__all__ = ["Connection"]

log = logging.getLogger("voxrelay")

# Container bytes no decoder counted (a raw-audio engine) are metered at their nominal byte rate (limits.py).
_CONTAINER_BYTES_PER_S = 16000


class Connection:
    """Runs one WebSocket session of any endpoint. Create it after admission, then `await run(accept)`.

    Args:
        websocket: the socket (not yet accepted).
        gateway: what every connection shares.
        codec: the endpoint's session.
        stats: the endpoint's metrics recorder for this connection.
        session_id: the id counted in `gateway.sessions` and logged.
        admission: what admission decided (byte-rate limit or not).
        idle_timeout_s: the endpoint's idle window (0 = none).
        logger: the endpoint's logger (`voxrelay`, `voxrelay.listen`).
        frame_limits: the endpoint's frame sizes, if not the gateway's (an endpoint whose text
            frames carry base64 audio takes larger text frames).
    """

    def __init__(
        self,
        websocket: WebSocket,
        gateway: Gateway,
        codec: Codec,
        stats: SessionMetrics,
        *,
        session_id: str,
        admission: Admission,
        idle_timeout_s: float,
        logger: logging.Logger = log,
        frame_limits: FrameLimits | None = None,
    ) -> None:
        settings = gateway.settings
        self.ws = websocket
        self.gateway = gateway
        self.codec = codec
        self.stats = stats
        self.session_id = session_id
        self.admission = admission
        self.log = logger
        self._loop = asyncio.get_running_loop()
        guard = SessionGuard(self._loop.time(), settings.rate_limit_factor, settings.rate_limit_burst_s, idle_timeout_s)
        limits, max_s = frame_limits or gateway.frame_limits, settings.max_session_s
        self.limiter = SessionLimiter(limits, guard, rate_limited=admission.rate_limited, max_duration_s=max_s)
        self.pipeline: AudioPipeline | None = None
        self._counter: CountingStream | None = None
        self._outcome: Outcome = "disconnected"
        self._usage: SessionUsage | None = None
        self._drained = False
        self._ending = False  # the session is being torn down: a stream's late events and end are ignored
        self._error_code: str | None = None  # the last error sent, for the usage record's outcome
        self._queue = WriterQueue()  # the reader waits at 256 queued actions (audio while a slow engine opens)
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers = SessionTimers(self._loop, self.limiter, codec, self._breached)  # deadline, idle timeout
        self.drain_cut = InputCut()  # a drain's stop waits for the frames already sent (ops/drain.py)

    async def run(self, accept: Callable[[], Awaitable[None]]) -> None:
        """Hold a session slot, `accept` the upgrade, and serve until the socket closes."""
        gateway, sid = self.gateway, self.session_id
        if len(gateway.sessions) >= gateway.settings.max_sessions:
            # Admission counted a stale number (two handshakes raced past it): try later, after the upgrade.
            await self._refuse_at_capacity(accept)
            return
        gateway.sessions.add(sid)  # the slot is held from here on: admission and this run without a pause
        try:
            await accept()
            self._flush()  # what a codec says first, unasked (OpenAI Realtime's session.created)
            self._usage = SessionUsage(gateway.usage, sid, self.admission.owner, self.stats.endpoint, gateway.engine)
            gateway.drainer.connections.add(self)
            self.log.info("session %s opened", sid)
            self._timers.start(gateway.settings.max_session_s)
            self._spawn(self._write(), "write")
            self._spawn(self._read(), "read")
            await self._closed.wait()
        finally:
            self._ending = True
            gateway.drainer.connections.discard(self)
            self._timers.cancel()
            self.drain_cut.cancel()
            self._queue.wake()  # a writer whose cancellation was swallowed (below) sees `_closed` and returns
            while self._tasks:  # tasks spawned while others were being cancelled (a late engine open) too
                tasks, self._tasks = self._tasks, []
                await cancel_and_wait(tasks)
            if self.pipeline is not None:
                await self.pipeline.abort()
            if self._usage is not None:  # before the slot is freed: a session not counted live is metered whole
                outcome = usage_outcome(self._outcome, drained=self._drained, error_code=self._error_code)
                self._usage.end(self._audio_seconds(), outcome)
            gateway.sessions.discard(sid)
            self.stats.closed(self._outcome, self._counter.audio_seconds() if self._counter else None)
            self.log.info("session %s closed (%d audio bytes)", sid, self.codec.audio_bytes)

    async def _refuse_at_capacity(self, accept: Callable[[], Awaitable[None]]) -> None:
        await accept()
        self.codec.limit_exceeded("the server is at its session limit; try again later", 1013)
        self._flush()
        await self._write()  # the error (counted as sent) and the close, then nothing else
        self.stats.closed("refused", None)

    @property
    def session(self) -> Codec:  # the endpoint's session (its codec)
        return self.codec

    # Drain (called by ops.drain.Drainer).

    def drain(self) -> None:
        """The server is draining: the client is told now; the session ends gracefully once the frames it
        already sent are read (`InputCut`); they reach the engine first (one queue, in order)."""
        self._drained = True
        self.codec.drain_notice()
        self._flush()
        self.drain_cut.begin(self._stop_for_drain)

    def _stop_for_drain(self) -> None:
        self.codec.drain()
        self._flush()

    def force_close(self) -> None:
        """The drain deadline passed: close 1012 now, dropping whatever is still queued."""
        if not self._closed.is_set():
            self._queue.replace(CloseSocket(1012, "the server is restarting"))

    # Reading the socket.

    async def _read(self) -> None:
        codec, cut, room = self.codec, self.drain_cut, self._queue.room
        try:
            while not codec.closed:
                message = await self.ws.receive()
                cut.frame_started()
                if message["type"] == "websocket.disconnect":
                    break
                breach = take_frame(message, codec, self.limiter, self._loop.time())
                if breach is not None:
                    self._breached(breach)
                await self._carry_out(codec.actions())
                if not room.is_set():  # awaited only when the writer is behind: no coroutine per frame
                    await room.wait()
                cut.frame_done()
            else:
                return  # the session ended itself: the writer sends what is left and closes
        except (WebSocketDisconnect, RuntimeError):
            pass
        except Exception:
            self._internal_error()
            return
        codec.client_gone()
        self._closed.set()

    async def _carry_out(self, actions: list[Action]) -> None:
        """The read loop's actions. A lone audio frame while the writer is idle is fed from the read loop's
        own task, in the writer's turn (a relay's stream sends it upstream before this returns): waking
        the writer for it was a task switch per frame. Anything else goes to the writer, in order."""
        if len(actions) == 1 and type(actions[0]) is FeedAudio and self._queue.idle and self.pipeline is not None:
            self._queue.claim()
            try:
                await self._feed(actions[0].data)
            except Exception:
                self._internal_error()
            finally:
                self._queue.release()
        elif actions:
            self._queue.put(actions)

    # Engine events (an `EventSink`): a stream that pushes them calls these itself, else the event pump does.

    def on_event(self, event: EngineEvent) -> None:
        if not self._ending:
            self.codec.engine_event(event)
            self._flush()

    async def on_event_now(self, event: EngineEvent) -> None:
        """`on_event` from the stream's reader (or the event pump): a message with nothing queued before it
        is sent from this task, in the writer's turn, not by waking the writer."""
        if self._ending:
            return
        try:
            self.codec.engine_event(event)
        except Exception:
            self._internal_error()  # the engine's task must go on reading: the session ends instead
            return
        queue = self._queue
        if not queue.idle:
            self._flush()
            return
        actions = self.codec.actions()
        if len(actions) != 1 or type(action := actions[0]) is not SendText:  # an event's message is one SendText
            queue.put(actions)  # anything else (an error and its close) goes to the writer, in order
            return
        queue.claim()  # the writer waits meanwhile; the reader queues its audio
        try:
            await self._send(action)
        except Exception:
            self._internal_error()
        finally:
            queue.release()

    def on_end(self) -> None:
        if not self._ending:
            self.codec.engine_flushed(self._counter.audio_seconds() if self._counter else None)
            self._flush()

    async def _pump_events(self) -> None:
        assert self.pipeline is not None
        try:
            async for event in self.pipeline.stream.events():
                await self.on_event_now(event)
        except Exception as exc:
            self.log.exception("session %s: engine stream failed", self.session_id)
            self.codec.fail("engine_error", f"the engine failed: {exc}")
            self._flush()
            return
        self.on_end()

    # Limits.

    def _breached(self, breach: Breach) -> None:  # a frame's, or a timer's (the deadline, the idle timeout)
        if breach.kind == "idle":
            self.log.info("session %s: %s", self.session_id, breach.message)
            self.codec.idle_timeout(breach.message)
        else:
            self.codec.limit_exceeded(breach.message, breach.close_code)
        self._flush()

    # Usage and quota.

    def _audio_seconds(self) -> float:
        seconds = self._counter.audio_seconds() if self._counter is not None else None
        return seconds if seconds is not None else self.codec.audio_bytes / _CONTAINER_BYTES_PER_S

    def _meter(self) -> None:
        """Add the audio received to the key's use (in memory); act when the quota's 90 % or 100 % is reached."""
        notice = self._usage.update(self._audio_seconds()) if self._usage is not None else None
        if notice is None:
            return  # nothing to say (every frame but one or two per session): nothing to flush
        if notice.kind == "warning":
            self.codec.quota_warning(notice.message)
        else:
            self.log.info("session %s: %s", self.session_id, notice.message)
            # Audio read but not yet fed is past the quota: it is dropped, the rest (finals, close) goes on.
            self._queue.drop_audio()
            self.codec.quota_exceeded(notice.message)
        self._flush()

    # The one writer: every action, in order, on one task.

    def _flush(self) -> None:
        self._queue.put(self.codec.actions())

    async def _feed(self, data: bytes) -> None:
        assert self.pipeline is not None
        self.stats.audio_fed()
        await self.pipeline.feed(data)
        self._meter()

    async def _write(self) -> None:
        while (action := await self._queue.take(self._closed)) is not None:
            if isinstance(action, CloseSocket):
                await self._close(action)
                return  # the queue stays busy: nothing is carried out after a close
            try:
                await self._run(action)
            except Exception:
                self._internal_error()
            finally:
                self._queue.done()

    def _internal_error(self) -> None:
        self.log.exception("session %s: unexpected error", self.session_id)
        self.codec.fail("internal", "internal server error")
        self._flush()

    async def _send(self, action: SendText) -> None:
        self.stats.sent(action.kind, action.code)
        if action.kind == "error":
            self._error_code = action.code
        if self.ws.application_state is WebSocketState.CONNECTED:
            try:  # noqa: SIM105  (contextlib.suppress would build an object per message)
                await self.ws.send_text(action.text)
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client left: the read loop sees it

    async def _run(self, action: Action) -> None:
        if isinstance(action, SendText):
            await self._send(action)
        elif isinstance(action, FeedAudio):
            if self.pipeline is not None:
                await self._feed(action.data)
        elif isinstance(action, FinalizeEngine):
            if self.pipeline is not None:
                if action.ends_turn:
                    self.stats.stop_requested()
                await self.pipeline.finalize()
        elif isinstance(action, CloseEngine):
            if self.pipeline is not None:
                self.stats.stop_requested()
                await self.pipeline.close()
        elif isinstance(action, OpenEngine):
            await self._open_engine(action)

    async def _open_engine(self, action: OpenEngine) -> None:
        gateway, engine = self.gateway, self.gateway.engine
        config = gateway.stream_config(action.audio_format, action.options, word_timings=action.word_timings)
        try:
            stream = await engine.open(config)
        except EngineFailure as exc:
            # A refused option (bad_request) is the client's to fix; anything else is the engine's.
            self.codec.fail(exc.code if exc.code in ("engine_unavailable", "bad_request") else "engine_error", str(exc))
            self._flush()
            return
        capabilities = engine.capabilities
        rate = 0 if capabilities.raw_audio else capabilities.sample_rate
        self._counter = CountingStream(stream, rate, action.audio_format.bytes_per_second)
        self.pipeline = AudioPipeline(self._counter, action.audio_format, engine, on_error=self._on_audio_error)
        self.limiter.declare(action.audio_format.bytes_per_second)
        if self._usage is not None and action.options.model:
            self._usage.set_model(action.options.model)
        self.codec.engine_opened()  # before any event the stream already has (`push_events` delivers those now)
        if not self._counter.push_events(self):  # a relay's stream delivers from its own reader: no pump task
            self._spawn(self._pump_events(), "events")
        self._flush()

    def _on_audio_error(self, message: str) -> None:  # on the event loop: the audio cannot be decoded
        self.codec.audio_error(message)
        self._flush()

    async def _close(self, action: CloseSocket) -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            self._outcome = "stopped" if action.code == 1000 else "error"
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.close(action.code, _fit(action.reason))
        if action.error is not None:
            self.stats.error(action.error)
            self._error_code = action.error
        self._closed.set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"{name}-{self.session_id}"))


def _fit(reason: str, limit: int = 123) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    data = reason.encode()
    return reason if len(data) <= limit else data[:limit].decode(errors="ignore")
