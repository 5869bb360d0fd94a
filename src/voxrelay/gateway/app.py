"""The FastAPI app: `/healthz`, `/readyz`, `/metrics`, the web UI at `/`, and the endpoints' routes.

Every WebSocket endpoint (`/stt-stream` in `stt_stream.py`, `/v1/listen` in `listen_v1.py`,
`/v1/realtime` in `realtime.py`)
is admission + a codec + the one connection runner (`connection.py`); what they share
lives in `state.Gateway`. The file endpoints are plain HTTP through the same admission:
OpenAI's `POST /v1/audio/transcriptions` (`transcriptions.py`) and Deepgram's pre-recorded
`POST /v1/listen` (`listen_prerecorded.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from voxrelay import __version__
from voxrelay.engines import create_engine
from voxrelay.engines.base import Engine, EngineFailure
from voxrelay.gateway import listen_prerecorded, listen_v1, realtime, stt_stream, transcriptions
from voxrelay.gateway.state import Gateway
from voxrelay.ops.drain import create_admin_router
from voxrelay.ops.metrics import CONTENT_TYPE, MetricsObserver
from voxrelay.security.admission import create_auth_router
from voxrelay.settings import Settings
from voxrelay.usage.api import create_usage_router

__all__ = ["Gateway", "create_app"]

log = logging.getLogger("voxrelay")

_PACKAGE_WEB = Path(__file__).parent.parent / "web"


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

        # The usage database first: migrations, and the quotas known before the first handshake. A newer
        # schema than this code knows stops the start (SchemaTooNew); an absent database is retried.
        await gateway.usage.start()
        starter = asyncio.create_task(start_engine())
        gateway.metrics.loop_lag.start()
        if gateway.box_metrics is not None:
            await gateway.box_metrics.start()
        try:
            yield
        finally:
            if gateway.box_metrics is not None:
                await gateway.box_metrics.stop()
            await gateway.metrics.loop_lag.stop()
            await gateway.usage.stop()  # the sessions have closed (drained): their last figures are written
            await gateway.usage.store.engine.dispose()
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
        # A worker of `serve --workers N` answers for the box: every worker's series, labelled `worker`.
        box = gateway.box_metrics
        body = gateway.render_metrics() if box is None else await box.render()
        return Response(body, media_type=CONTENT_TYPE)

    app.include_router(stt_stream.create_router(gateway))
    app.include_router(listen_v1.create_router(gateway))
    app.include_router(listen_prerecorded.create_router(gateway))
    app.include_router(transcriptions.create_router(gateway))
    app.include_router(realtime.create_router(gateway))
    app.include_router(create_auth_router(gateway.gatekeeper))
    app.include_router(create_admin_router(gateway.drainer, settings.admin_key))
    app.include_router(create_usage_router(gateway.usage, gateway.gatekeeper, settings.admin_key))

    web_dir = settings.web_dir or _PACKAGE_WEB
    if (web_dir / "index.html").is_file():
        app.mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    else:

        @app.get("/", response_class=HTMLResponse)
        async def placeholder() -> str:
            return _PLACEHOLDER

    return app


_PLACEHOLDER = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>voxrelay</title></head>
<body><h1>voxrelay</h1><p>The gateway is running. The web UI is not built: run
<code>scripts/build-web.sh</code>. WebSocket endpoint: <code>/stt-stream</code>;
health: <a href="/healthz">/healthz</a>.</p></body></html>"""
