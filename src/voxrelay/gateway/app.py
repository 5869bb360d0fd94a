"""The FastAPI app: `/healthz`, the web UI at `/`, and the `/stt-stream` WebSocket.

This is the I/O glue. Each `/stt-stream` connection gets a sans-I/O `Session`; this
module reads frames into it, runs the actions it returns (send, open/feed/finalize/
close the engine stream, close the socket), and pumps engine events back into it.
Audio is decoded here, at the edge, for engines that want PCM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voxrelay import __version__
from voxrelay.ops import logs
from voxrelay.engines import create_engine
from voxrelay.ops.drain import Drainer, InputCut, create_admin_router
from voxrelay.engines.base import Engine, EngineFailure, StreamConfig
from voxrelay.security.admission import Admission, Gatekeeper, Refusal, create_auth_router, deny
from voxrelay.security.limits import SessionGuard
from voxrelay.ops.metrics import CONTENT_TYPE, CountingStream, Metrics, MetricsObserver, Outcome
from voxrelay.gateway.pipeline import AudioPipeline
from voxrelay.tasks import cancel_and_wait
from voxrelay.protocol import messages as m
from voxrelay.protocol.state import SessionState
from voxrelay.protocol.session import (
    Action,
    CloseEngine,
    CloseSocket,
    FeedAudio,
    FinalizeEngine,
    OpenEngine,
    SendMessage,
    Session,
    SessionLimits,
)
from voxrelay.settings import Settings

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("voxrelay")

_PACKAGE_WEB = Path(__file__).parent.parent / "web"


class Gateway:
    """What every connection shares: settings, the engine, and the live sessions."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: set[str] = set()
        self.start_error: str | None = None
        self.limits = SessionLimits(settings.max_text_frame, settings.max_audio_frame)
        self.gatekeeper = Gatekeeper(settings)
        self.drainer = Drainer(settings.drain_timeout_s, lambda: len(self.sessions))
        self.metrics = Metrics(engine.name, lambda: len(self.sessions))
        self.metrics.max_sessions.set(settings.max_sessions)

    @property
    def ready(self) -> bool:
        return self.engine.ready

    @property
    def draining(self) -> bool:
        """True once a drain began: not ready, new sessions refused (docs/reliability.md)."""
        return self.drainer.draining

    def not_ready_reasons(self) -> list[str]:
        """Why `/readyz` fails (empty when ready): engine not loaded, draining, or at capacity."""
        reasons = []
        if not self.ready:
            reasons.append("engine_failed" if self.start_error else "engine_starting")
        if getattr(self, "draining", False):
            reasons.append("draining")
        if len(self.sessions) >= self.settings.max_sessions:
            reasons.append("at_capacity")
        return reasons

    def stream_config(self, audio_format: m.AudioFormat, options: m.StreamOptions) -> StreamConfig:
        """The engine-facing config for a client's configure."""
        if self.engine.capabilities.raw_audio:
            encoding, rate, channels = audio_format.encoding, audio_format.sample_rate, audio_format.channels
        else:
            encoding, rate, channels = "pcm_f32", self.engine.capabilities.sample_rate, 1
        return StreamConfig(
            encoding=encoding,
            sample_rate=rate,
            channels=channels,
            model=options.model,
            language=options.language,
            interim_results=options.interim_results,
            endpointing_ms=options.endpointing,
            utterance_end_ms=options.utterance_end_ms,
            vad_events=options.vad_events,
            punctuate=options.punctuate,
            smart_format=options.smart_format,
            keyterms=options.keyterms,
        )


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the engine starts loading at startup and `/healthz` says when it is ready."""
    settings = settings or Settings()
    if engine is None:
        engine = create_engine(settings.engine)
    gateway = Gateway(settings, engine)
    gateway.gatekeeper.on_token_minted = gateway.metrics.token_minted
    gateway.gatekeeper.on_token_refused = gateway.metrics.token_refused
    engine.observe(MetricsObserver(gateway.metrics))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def start_engine() -> None:
            try:
                await engine.start()
                log.info("engine %s ready (model %s)", engine.name, engine.model_name)
            except EngineFailure as exc:
                gateway.start_error = str(exc)
                log.error("engine %s failed to start: %s", engine.name, exc)

        starter = asyncio.create_task(start_engine())
        gateway.metrics.loop_lag.start()
        try:
            yield
        finally:
            await gateway.metrics.loop_lag.stop()
            starter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starter
            await engine.stop()

    app = FastAPI(title="voxrelay", version=__version__, lifespan=lifespan)
    app.state.gateway = gateway

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        if gateway.ready:
            return JSONResponse({"status": "ok", "engine": engine.name})
        body: dict[str, Any] = {"status": "error" if gateway.start_error else "starting", "engine": engine.name}
        if gateway.start_error:
            body["message"] = gateway.start_error
        return JSONResponse(body, status_code=503)

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        # Readiness (load balancers, k8s): take new sessions here? /healthz stays the liveness check.
        reasons = gateway.not_ready_reasons()
        gateway.metrics.ready.set(0 if reasons else 1)
        body = {"status": "not_ready" if reasons else "ready", "reasons": reasons, "sessions": len(gateway.sessions)}
        return JSONResponse(body, status_code=503 if reasons else 200)

    @app.get("/metrics")
    async def metrics() -> Response:
        gateway.metrics.ready.set(0 if gateway.not_ready_reasons() else 1)
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)

    @app.websocket("/stt-stream")
    async def stt_stream(websocket: WebSocket) -> None:
        await SttConnection(websocket, gateway).run()

    app.include_router(create_auth_router(gateway.gatekeeper))
    app.include_router(create_admin_router(gateway.drainer, settings.admin_key))
    for router in extra_routers(gateway):
        app.include_router(router)

    web_dir = settings.web_dir or _PACKAGE_WEB
    if (web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    else:

        @app.get("/", response_class=HTMLResponse)
        async def placeholder() -> str:
            return _PLACEHOLDER

    return app


def extra_routers(gateway: Gateway) -> list[Any]:
    """Routers of other protocols served beside `/stt-stream` (e.g. Deepgram's `/v1/listen`)."""
    routers = []
    try:
        from voxrelay.gateway.listen_v1 import create_router
    except ModuleNotFoundError:
        return routers
    routers.append(create_router(gateway))
    return routers


class SttConnection:
    """Runs one `/stt-stream` WebSocket: the only code that touches that socket."""

    def __init__(self, websocket: WebSocket, gateway: Gateway) -> None:
        self.ws = websocket
        self.gateway = gateway
        self.session = Session(uuid.uuid4().hex, gateway.engine.name, gateway.limits)
        self.pipeline: AudioPipeline | None = None
        self.stats = gateway.metrics.session("stt-stream")
        self._counter: CountingStream | None = None
        self._outcome: Outcome = "disconnected"
        self._closed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        settings = gateway.settings
        self.guard = SessionGuard(
            asyncio.get_running_loop().time(),
            settings.rate_limit_factor,
            settings.rate_limit_burst_s,
            settings.idle_timeout_s,
        )
        self.admission: Admission | None = None
        self.drain_cut = InputCut()  # the drain's stop waits for the frames already sent (drain.py)

    async def run(self) -> None:
        gateway = self.gateway
        logs.session_id.set(self.session.session_id)  # inherited by the tasks created below
        peer = self.ws.client.host if self.ws.client else None
        try:
            admission = gateway.gatekeeper.admit(
                self.ws.headers,
                self.ws.query_params.multi_items(),
                peer,
                live_sessions=len(gateway.sessions),
                draining=gateway.draining,
            )
        except Refusal as exc:
            self.stats.refused(exc.code)
            await deny(self.ws, exc)
            return
        try:
            await self._serve(admission)
        finally:
            gateway.gatekeeper.release(admission)

    async def _serve(self, admission: Admission) -> None:
        gateway = self.gateway
        self.admission = admission
        await self.ws.accept(subprotocol=admission.subprotocol)
        if len(gateway.sessions) >= gateway.settings.max_sessions:
            await self._refuse("limit_exceeded", "the server is at its session limit; try again later", 1013)
            return
        if not gateway.ready:
            reason = gateway.start_error or "the engine is still starting; try again shortly"
            await self._refuse("engine_unavailable", reason, 1013)
            return
        sid = self.session.session_id
        gateway.sessions.add(sid)
        gateway.drainer.connections.add(self)
        log.info("session %s opened", sid)
        deadline = asyncio.get_running_loop().call_later(gateway.settings.max_session_s, self._deadline)
        reader = asyncio.create_task(self._read(), name=f"read-{sid}")
        self._tasks.append(reader)
        if gateway.settings.idle_timeout_s > 0:
            self._tasks.append(asyncio.create_task(self._watch_idle(), name=f"idle-{sid}"))
        try:
            await self._closed.wait()
        finally:
            gateway.drainer.connections.discard(self)
            deadline.cancel()
            self.drain_cut.cancel()
            await cancel_and_wait(self._tasks)
            if self.pipeline is not None:
                await self.pipeline.abort()
            gateway.sessions.discard(sid)
            self.stats.closed(self._outcome, self._counter.audio_seconds() if self._counter else None)
            log.info("session %s closed (%d audio bytes)", sid, self.session.audio_bytes)

    # Reading the socket.

    async def _read(self) -> None:
        try:
            while not self.session.closed:
                message = await self.ws.receive()
                self.drain_cut.frame_started()
                if message["type"] == "websocket.disconnect":
                    self.session.client_gone()
                    break
                if message.get("bytes") is not None:
                    self._check_rate(len(message["bytes"]))
                    self.session.receive_audio(message["bytes"])
                elif message.get("text") is not None:
                    self.guard.on_frame(asyncio.get_running_loop().time())
                    self.session.receive_text(message["text"])
                await self._execute()
                self.drain_cut.frame_done()
        except (WebSocketDisconnect, RuntimeError):
            self.session.client_gone()
        except Exception:
            log.exception("session %s: unexpected error", self.session.session_id)
            self.session.fail("internal", "internal server error")
            await self._execute()
        finally:
            self._closed.set()

    async def _pump_events(self) -> None:
        assert self.pipeline is not None
        try:
            async for event in self.pipeline.stream.events():
                self.session.engine_event(event)
                await self._execute()
            self.session.engine_flushed()
            await self._execute()
        except Exception as exc:
            log.exception("session %s: engine stream failed", self.session.session_id)
            self.session.fail("engine_error", f"the engine failed: {exc}")
            await self._execute()

    # Running the session's actions.

    async def _execute(self) -> None:
        # An action can queue more (an engine that fails to open queues error + close): run them too.
        while actions := self.session.actions():
            for action in actions:
                await self._run_action(action)

    async def _run_action(self, action: Action) -> None:
        if isinstance(action, SendMessage):
            self.stats.message_sent(action.message)
            await self._send(action.message)
        elif isinstance(action, FeedAudio):
            if self.pipeline is not None:
                self.stats.audio_fed()
                await self.pipeline.feed(action.data)
        elif isinstance(action, FinalizeEngine):
            if self.pipeline is not None:
                await self.pipeline.finalize()
        elif isinstance(action, CloseEngine):
            if self.pipeline is not None:
                self.stats.stop_requested()
                await self.pipeline.close()
        elif isinstance(action, OpenEngine):
            await self._open_engine(action)
        elif isinstance(action, CloseSocket):
            await self._close(action.code, action.reason)

    async def _open_engine(self, action: OpenEngine) -> None:
        config = self.gateway.stream_config(action.audio_format, action.options)
        try:
            stream = await self.gateway.engine.open(config)
        except EngineFailure as exc:
            code = "engine_unavailable" if exc.code == "engine_unavailable" else "engine_error"
            self.session.fail(code, str(exc))  # type: ignore[arg-type]
            return
        engine = self.gateway.engine
        rate = 0 if engine.capabilities.raw_audio else engine.capabilities.sample_rate
        stream = self._counter = CountingStream(stream, rate, action.audio_format.bytes_per_second)
        self.pipeline = AudioPipeline(stream, action.audio_format, engine, on_error=self._on_audio_error)
        self.guard.declare(action.audio_format.bytes_per_second)
        self._tasks.append(asyncio.create_task(self._pump_events(), name=f"events-{self.session.session_id}"))
        self.session.engine_opened()

    # Limits and drain (the rules are in limits.py and drain.py; this is the glue).

    def _check_rate(self, nbytes: int) -> None:
        reason = self.guard.on_audio(nbytes, asyncio.get_running_loop().time())
        if reason is not None and self.admission is not None and self.admission.rate_limited:
            self.session.fail("limit_exceeded", reason, 1008)

    async def _watch_idle(self) -> None:
        limit = self.gateway.settings.idle_timeout_s
        loop = asyncio.get_running_loop()
        while not self.session.closed:
            await asyncio.sleep(max(0.05, limit - self.guard.idle_for(loop.time())))
            if self.session.state in (SessionState.CONFIGURING, SessionState.STREAMING) and self.guard.idle_expired(
                loop.time()
            ):
                self.session.fail("limit_exceeded", f"no audio or message for {limit:g} s; the session was closed", 1008)
                await self._execute()
                return

    def drain(self) -> None:
        """The server is draining: warn the client now; stop as if it had sent `stop` (finals follow)
        once the audio it already sent is read. Stopping here at once lost that audio (`InputCut`)."""
        self.session.warn(
            "draining", "the server is shutting down: this session ends after its final transcripts; reconnect"
        )
        self._tasks.append(asyncio.create_task(self._execute()))
        self.drain_cut.begin(self._stop_for_drain)

    def _stop_for_drain(self) -> None:
        self.session.stop()
        self._tasks.append(asyncio.create_task(self._execute()))

    def force_close(self) -> None:
        """The drain deadline passed: close 1012 now."""
        if not self._closed.is_set():
            self._tasks.append(asyncio.create_task(self._close(1012, "the server is restarting")))

    def _on_audio_error(self, message: str) -> None:
        # Called on the event loop when the audio cannot be decoded.
        self.session.fail("unsupported_audio", message)
        self._tasks.append(asyncio.create_task(self._execute()))

    def _deadline(self) -> None:
        limit = self.gateway.settings.max_session_s
        self.session.fail("limit_exceeded", f"the session reached its maximum duration of {limit:g} s", 1008)
        self._tasks.append(asyncio.create_task(self._execute()))

    async def _send(self, message: m.ServerMessage) -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(m.encode(message))

    async def _close(self, code: int, reason: str) -> None:
        if self.ws.application_state is WebSocketState.CONNECTED:
            self._outcome = "stopped" if code == 1000 else "error"
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.close(code, reason.encode()[:120].decode(errors="ignore"))
        self._closed.set()

    async def _refuse(self, code: m.ErrorCode, message: str, close_code: int) -> None:
        self.stats.refused(code)
        await self._send(m.ErrorMessage(code, message))
        await self._close(close_code, message)


_PLACEHOLDER = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>voxrelay</title></head>
<body><h1>voxrelay</h1><p>The gateway is running. The web UI is not built: run
<code>scripts/build-web.sh</code>. WebSocket endpoint: <code>/stt-stream</code>;
health: <a href="/healthz">/healthz</a>.</p></body></html>"""
