"""`/v1/listen`: Deepgram's Live API served by this gateway's engine. Admission + codec + runner.

Existing Deepgram SDKs (Python, JS) work against it unchanged: point their base URL
at the gateway. Before the upgrade the request's parameters are checked (HTTP 400, as
Deepgram does), then the one admission path (`security.admission`, Deepgram's credential
forms) decides; a refusal is sent as a Deepgram-like HTTP error. After it, the
`ListenSession` codec runs on the one connection runner (`gateway.connection`), which
applies the same limits and records the same metrics as every endpoint. The local
engine runs with word timings on, so Results carry real words, times and confidences.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse

from voxrelay import __version__
from voxrelay.gateway.connection import Connection
from voxrelay.gateway.state import Gateway
from voxrelay.ops import logs
from voxrelay.protocol.deepgram_live import ListenRequestError, ListenSession, ModelInfo, parse_params
from voxrelay.security.admission import Refusal, RefusalKind

__all__ = ["RedactCredentials", "create_router", "install_log_redaction", "serve"]

log = logging.getLogger("voxrelay.listen")


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


def create_router(gateway: Gateway) -> APIRouter:
    """The `/v1/listen` WebSocket route, sharing the gateway's engine, admission and limits."""
    install_log_redaction()
    router = APIRouter()

    @router.websocket("/v1/listen")
    async def listen(websocket: WebSocket) -> None:
        await serve(websocket, gateway)

    return router


# The one admission decision, in Deepgram's words.
_REFUSALS: dict[RefusalKind, tuple[int, str, str]] = {
    "credentials": (401, "INVALID_AUTH", "Invalid credentials."),
    "origin": (403, "FORBIDDEN", "This origin may not connect."),
    "handshake_rate": (429, "TOO_MANY_REQUESTS", "Too many connection attempts from this address."),
    "draining": (503, "SERVICE_UNAVAILABLE", "The server is shutting down."),
    "global_cap": (429, "TOO_MANY_REQUESTS", "The server is at its session limit."),
    "file_cap": (429, "TOO_MANY_REQUESTS", "Too many files are being transcribed; try again later."),
    "key_cap": (429, "TOO_MANY_REQUESTS", "This key has too many open streams."),
    "engine": (503, "SERVICE_UNAVAILABLE", ""),
    "quota": (429, "QUOTA_EXCEEDED", ""),
}


def listen_error(refusal: Refusal) -> ListenRequestError:
    """A refusal of the admission path as Deepgram's HTTP error."""
    status, err_code, message = _REFUSALS[refusal.kind]
    return ListenRequestError(status, err_code, message or refusal.reason)


async def serve(websocket: WebSocket, gateway: Gateway) -> None:
    """One `/v1/listen` connection: parameters, admission, then the runner."""
    engine, settings = gateway.engine, gateway.settings
    request_id = str(uuid.uuid4())
    sid = f"listen-{request_id}"
    logs.session_id.set(sid)  # inherited by the tasks the runner creates
    stats = gateway.metrics.session("v1-listen")
    try:
        params = parse_params(
            websocket.query_params.multi_items(), min_endpointing_ms=engine.capabilities.min_endpointing_ms
        )
    except ListenRequestError as exc:
        stats.refused(exc.err_code)
        await _deny(websocket, request_id, exc)
        return
    try:
        admission = gateway.admit(websocket, "deepgram")
    except Refusal as refusal:
        error = listen_error(refusal)
        stats.refused(error.err_code)
        await _deny(websocket, request_id, error, refusal.retry_after)
        return
    created = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    session = ListenSession(request_id, params, ModelInfo(engine.model_name, __version__, engine.name), created)
    log.info(
        "listen %s opened (encoding %s, model %s)",
        request_id, params.encoding or "container", params.options.model or engine.model_name,
    )
    connection = Connection(
        websocket, gateway, session, stats,
        session_id=sid, admission=admission, idle_timeout_s=settings.listen_idle_timeout_s, logger=log,
    )

    async def accept() -> None:
        await websocket.accept(subprotocol=admission.subprotocol, headers=[(b"dg-request-id", request_id.encode())])

    try:
        await connection.run(accept)
    finally:
        gateway.gatekeeper.release(admission)


async def _deny(websocket: WebSocket, request_id: str, exc: ListenRequestError, retry_after: int | None = None) -> None:
    log.info("listen %s refused (HTTP %d): %s", request_id, exc.status, exc.message)
    headers = {"dg-error": exc.message.encode("ascii", "replace").decode(), "dg-request-id": request_id}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    try:
        await websocket.send_denial_response(JSONResponse(exc.body(request_id), exc.status, headers=headers))
    except RuntimeError:  # a server without the denial-response extension: the upgrade fails with 403
        await websocket.close(1008)
