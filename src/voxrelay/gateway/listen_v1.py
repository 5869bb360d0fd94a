"""`/v1/listen`: Deepgram's Live API served by this gateway's engine. I/O glue only.

Existing Deepgram SDKs (Python, JS) work against it unchanged: point their base URL
at the gateway. Before the upgrade the request is checked (parameters, auth, the
engine, the session limit) and refused with a Deepgram-like HTTP error. After it,
each connection gets a sans-I/O `ListenSession`; this module reads frames into it,
carries out the actions it returns, and pumps engine events back into it. The local
engine runs with word timings on, so Results carry real words, times and confidences.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from datetime import datetime, timezone

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxrelay import __version__
from voxrelay.ops import logs
from voxrelay.security.auth import origin_allowed
from voxrelay.engines.base import EngineFailure
from voxrelay.ops.drain import InputCut
from voxrelay.ops.metrics import CountingStream, Outcome
from voxrelay.gateway.pipeline import AudioPipeline
from voxrelay.tasks import cancel_and_wait
from voxrelay.protocol.deepgram_live import ListenRequestError, ModelInfo, authorized, parse_params, pick_subprotocol
from voxrelay.protocol.listen_session import (
    CloseSocket,
    EndStream,
    FeedAudio,
    FinalizeStream,
    ListenAction,
    ListenSession,
    OpenStream,
    SendText,
)
from voxrelay.protocol.messages import AudioFormat

__all__ = ["ListenConnection", "RedactCredentials", "create_router", "install_log_redaction"]

log = logging.getLogger("voxrelay.listen")

# The local engines cut an utterance after this much silence at the least: Deepgram's default of
# 10 ms would hand Whisper single words. Engines that take raw audio get the client's value.


class RedactCredentials(logging.Filter):
    """Masks credential headers in handshake records: websockets logs every request header at DEBUG
    (`< authorization: Token KEY`), on uvicorn's logger when uvicorn serves it."""

    _SENSITIVE = ("authorization", "sec-websocket-protocol")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(record.msg, str) and "%s: %s" in record.msg and isinstance(args, tuple) and len(args) == 2:
            name, value = args
            if isinstance(name, str) and name.lower() in self._SENSITIVE:
                scheme = str(value).split(",")[0].split(" ")[0].strip()
                record.args = (
                    name,
                    f"{scheme} [redacted]" if scheme and scheme != str(value).strip() else "[redacted]",
                )
        return True


def install_log_redaction(names: tuple[str, ...] = ("uvicorn.error", "websockets.server")) -> None:
    """Attach `RedactCredentials` to the loggers that see /v1/listen handshakes (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())


def create_router(gateway) -> APIRouter:  # type: ignore[no-untyped-def]  # server.Gateway (import cycle)
    """The `/v1/listen` WebSocket route, sharing the gateway's engine and session limit."""
    install_log_redaction()
    router = APIRouter()

    @router.websocket("/v1/listen")
    async def listen(websocket: WebSocket) -> None:
        await ListenConnection(websocket, gateway).run()

    return router


def _keys(setting: str) -> list[str]:
    return [key.strip() for key in setting.split(",") if key.strip()]


class ListenConnection:
    """Runs one `/v1/listen` WebSocket: the only code that touches that socket."""

    def __init__(self, websocket: WebSocket, gateway) -> None:  # type: ignore[no-untyped-def]
        self.ws = websocket
        self.gateway = gateway
        self.request_id = str(uuid.uuid4())
        self.session: ListenSession | None = None
        self.pipeline: AudioPipeline | None = None
        self.stream: CountingStream | None = None
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._idle: asyncio.TimerHandle | None = None
        self.stats = gateway.metrics.session("v1-listen")
        self._outcome: Outcome = "disconnected"
        self.drain_cut = InputCut()  # the drain's CloseStream waits for the frames already sent (drain.py)

    async def run(self) -> None:
        gateway, settings, engine = self.gateway, self.gateway.settings, self.gateway.engine
        logs.session_id.set(f"listen-{self.request_id}")  # inherited by the tasks created below
        try:
            params = parse_params(
                self.ws.query_params.multi_items(),
                min_endpointing_ms=engine.capabilities.min_endpointing_ms,
            )
        except ListenRequestError as exc:
            await self._deny(exc)
            return
        offered = self.ws.headers.get("sec-websocket-protocol")
        # Deepgram's key forms; VOXRELAY_API_KEYS are accepted too. Auth is off only on loopback with no keys.
        keys = _keys(settings.listen_api_keys) + list(gateway.gatekeeper.keys)
        keys_missing = gateway.gatekeeper.auth_on and not keys
        if keys_missing or not authorized(self.ws.headers.get("authorization"), offered, keys):
            await self._deny(ListenRequestError(401, "INVALID_AUTH", "Invalid credentials."))
            return
        gatekeeper = gateway.gatekeeper
        if not origin_allowed(self.ws.headers.get("origin"), self.ws.headers.get("host"), gatekeeper.origins,
                              auth_on=gatekeeper.auth_on or bool(keys)):
            await self._deny(ListenRequestError(403, "FORBIDDEN", "This origin may not connect."))
            return
        if gateway.draining:
            await self._deny(ListenRequestError(503, "SERVICE_UNAVAILABLE", "The server is shutting down."))
            return
        if not gateway.ready:
            reason = gateway.start_error or "the engine is still starting; try again shortly"
            await self._deny(ListenRequestError(503, "SERVICE_UNAVAILABLE", reason))
            return
        if len(gateway.sessions) >= settings.max_sessions:
            await self._deny(ListenRequestError(429, "TOO_MANY_REQUESTS", "The server is at its session limit."))
            return
        await self.ws.accept(
            subprotocol=pick_subprotocol(offered), headers=[(b"dg-request-id", self.request_id.encode())]
        )

        created = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        model = ModelInfo(engine.model_name, __version__, engine.name)
        self.session = ListenSession(self.request_id, params, model, created)
        sid = f"listen-{self.request_id}"
        gateway.sessions.add(sid)
        gateway.drainer.connections.add(self)
        log.info(
            "listen %s opened (encoding %s, model %s)",
            self.request_id,
            params.encoding or "container",
            params.options.model or engine.model_name,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(settings.max_session_s, self._deadline)
        self._touch()
        self._tasks.append(asyncio.create_task(self._read(), name=f"listen-read-{self.request_id}"))
        try:
            await self._closed.wait()
        finally:
            gateway.drainer.connections.discard(self)
            deadline.cancel()
            if self._idle is not None:
                self._idle.cancel()
            self.drain_cut.cancel()
            await cancel_and_wait(self._tasks)
            if self.pipeline is not None:
                await self.pipeline.abort()
            elif self.stream is not None:
                await self.stream.abort()
            gateway.sessions.discard(sid)
            self.stats.closed(self._outcome, self.stream.audio_seconds() if self.stream else None)
            log.info("listen %s closed (%d audio bytes)", self.request_id, self.session.audio_bytes)

    # Before the upgrade.

    async def _deny(self, exc: ListenRequestError) -> None:
        log.info("listen %s refused (HTTP %d): %s", self.request_id, exc.status, exc.message)
        self.stats.refused(exc.err_code)
        headers = {
            "dg-error": exc.message.encode("ascii", "replace").decode(),
            "dg-request-id": self.request_id,
        }
        try:
            await self.ws.send_denial_response(JSONResponse(exc.body(self.request_id), exc.status, headers=headers))
        except RuntimeError:  # a server without the denial-response extension: the upgrade fails with 403
            await self.ws.close(1008)

    # Reading the socket.

    async def _read(self) -> None:
        session = self.session
        assert session is not None
        try:
            while not session.closed:
                message = await self.ws.receive()
                self.drain_cut.frame_started()
                if message["type"] == "websocket.disconnect":
                    session.client_gone()
                    break
                if message.get("bytes") is not None:
                    session.receive_audio(message["bytes"])
                elif message.get("text") is not None:
                    session.receive_text(message["text"])
                self._touch()
                await self._execute()
                self.drain_cut.frame_done()
        except (WebSocketDisconnect, RuntimeError):
            session.client_gone()
        except Exception:
            log.exception("listen %s: unexpected error", self.request_id)
            session.fail("internal", "internal server error")
            await self._execute()
        finally:
            self._closed.set()

    def _touch(self) -> None:
        """Restart the idle window (Deepgram's NET-0001) after each client frame, until CloseStream."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        assert self.session is not None
        if self.session.waiting_for_input:
            timeout = self.gateway.settings.listen_idle_timeout_s
            self._idle = asyncio.get_running_loop().call_later(timeout, self._on_idle)

    def _on_idle(self) -> None:
        assert self.session is not None
        log.info(
            "listen %s: no audio or message for %g s", self.request_id, self.gateway.settings.listen_idle_timeout_s
        )
        self.session.idle_timeout()
        self._tasks.append(asyncio.create_task(self._execute()))

    def drain(self) -> None:
        """The server is draining. Deepgram's protocol has no warning message, so the stream is
        closed the way a client's CloseStream closes it: final Results, Metadata, close 1000, once
        the audio the client already sent is read (closing at once lost that audio: `InputCut`)."""
        self.drain_cut.begin(self._close_for_drain)

    def _close_for_drain(self) -> None:
        assert self.session is not None
        self.session.receive_text('{"type": "CloseStream"}')
        self._tasks.append(asyncio.create_task(self._execute()))

    def force_close(self) -> None:
        """The drain deadline passed: close 1012 now."""
        if not self._closed.is_set():
            self._tasks.append(asyncio.create_task(self._close(1012, "the server is restarting")))

    def _deadline(self) -> None:
        assert self.session is not None
        limit = self.gateway.settings.max_session_s
        self.session.fail("limit_exceeded", f"the stream reached its maximum duration of {limit:g} s")
        self._tasks.append(asyncio.create_task(self._execute()))

    async def _pump_events(self) -> None:
        assert self.session is not None and self.stream is not None
        session, stream = self.session, self.stream
        try:
            async for event in stream.events():
                session.engine_event(event)
                await self._execute()
            session.engine_flushed(stream.audio_seconds())
            await self._execute()
        except Exception as exc:
            log.exception("listen %s: engine stream failed", self.request_id)
            session.fail("engine_error", f"the engine failed: {exc}")
            await self._execute()

    # Running the session's actions.

    async def _execute(self) -> None:
        assert self.session is not None
        while actions := self.session.actions():
            for action in actions:
                await self._run_action(action)

    async def _run_action(self, action: ListenAction) -> None:
        if isinstance(action, SendText):
            await self._send(action.text)
        elif isinstance(action, FeedAudio):
            if self.pipeline is not None:
                await self.pipeline.feed(action.data)
        elif isinstance(action, FinalizeStream):
            if self.pipeline is not None:
                await self.pipeline.finalize()
        elif isinstance(action, EndStream):
            if self.pipeline is not None:
                await self.pipeline.close()
        elif isinstance(action, OpenStream):
            await self._open_stream(action.audio_format)
        elif isinstance(action, CloseSocket):
            await self._close(action.code, action.reason)

    async def _open_stream(self, audio_format: AudioFormat) -> None:
        assert self.session is not None
        engine = self.gateway.engine
        config = self.gateway.stream_config(audio_format, self.session.params.options)
        config = dataclasses.replace(config, word_timings=True)
        try:
            inner = await engine.open(config)
        except EngineFailure as exc:
            self.session.fail("engine_unavailable" if exc.code == "engine_unavailable" else "engine_error", str(exc))
            return
        self.stream = CountingStream(inner, engine.capabilities.sample_rate, audio_format.bytes_per_second)
        self.pipeline = AudioPipeline(self.stream, audio_format, engine, on_error=self._on_audio_error)
        self._tasks.append(asyncio.create_task(self._pump_events(), name=f"listen-events-{self.request_id}"))

    def _on_audio_error(self, message: str) -> None:
        # Called on the event loop when the container cannot be decoded.
        assert self.session is not None
        self.session.fail("unsupported_audio", f"DATA-0000: {message}")
        self._tasks.append(asyncio.create_task(self._execute()))

    async def _send(self, text: str) -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            self._outcome = "stopped" if code == 1000 else "error"
            if code != 1000:
                self.stats.error(str(code))
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.close(code, reason)
        self._closed.set()
