"""`/v1/realtime?intent=transcription`: OpenAI's Realtime transcription sessions. Admission + codec + runner.

An OpenAI client pointed at the gateway (`AsyncOpenAI(base_url="http://HOST/v1")`,
`client.realtime.connect(extra_query={"intent": "transcription"})`) works unchanged. Before the
upgrade: `intent` must be `transcription` (HTTP 400 otherwise; a `model` parameter is accepted and
ignored), then the one admission path decides (`Authorization: Bearer KEY`, or a browser's
subprotocol `bearer, TOKEN` from `POST /v1/auth/token`); a refusal is an HTTP error in OpenAI's JSON
shape. After it, the `RealtimeSession` codec runs on the one connection runner, with the same
limits and metrics as every endpoint. Its text frames carry base64 audio, so they may be as large
as an audio frame's base64 plus the usual text-frame allowance; the audio inside is what the
audio-frame and byte-rate limits count (`gateway.connection`).
"""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse

from voxrelay.gateway.connection import Connection
from voxrelay.gateway.state import Gateway
from voxrelay.ops import logs
from voxrelay.protocol.openai_realtime import RealtimeSession
from voxrelay.security.admission import Refusal
from voxrelay.security.limits import FrameLimits

__all__ = ["create_router", "realtime_frame_limits", "serve"]

log = logging.getLogger("voxrelay.realtime")


def create_router(gateway: Gateway) -> APIRouter:
    router = APIRouter()

    @router.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket) -> None:
        await serve(websocket, gateway)

    return router


def realtime_frame_limits(limits: FrameLimits) -> FrameLimits:
    """Text frames carry an audio frame in base64 (4 bytes per 3) plus the JSON around it."""
    return FrameLimits(limits.max_text_frame + 4 * -(-limits.max_audio_frame // 3), limits.max_audio_frame)


async def serve(websocket: WebSocket, gateway: Gateway) -> None:
    """One `/v1/realtime` connection: intent, admission, then the runner."""
    sid = f"sess_{uuid.uuid4().hex[:24]}"
    logs.session_id.set(sid)  # inherited by the tasks the runner creates
    stats = gateway.metrics.session("v1-realtime")
    intent = websocket.query_params.get("intent")
    if intent != "transcription":
        stats.refused("bad_request")
        message = (
            f"voxrelay serves Realtime transcription sessions only (intent={intent!r}); "
            "connect with ?intent=transcription"
        )
        await _deny(websocket, 400, "invalid_request_error", "invalid_intent", message, "intent")
        return
    try:
        admission = gateway.admit(websocket, "bearer")
    except Refusal as refusal:
        stats.refused(refusal.code)
        kind = "invalid_request_error" if refusal.status in (401, 403) else "server_error"
        if refusal.kind == "quota":
            kind = "insufficient_quota"
        await _deny(websocket, refusal.status, kind, refusal.code, refusal.reason, None, refusal.retry_after)
        return
    session = RealtimeSession(sid, gateway.engine.capabilities.min_endpointing_ms)
    connection = Connection(
        websocket, gateway, session, stats,
        session_id=sid, admission=admission, idle_timeout_s=gateway.settings.idle_timeout_s, logger=log,
        frame_limits=realtime_frame_limits(gateway.frame_limits),
    )
    try:
        await connection.run(lambda: websocket.accept(subprotocol=admission.subprotocol))
    finally:
        gateway.gatekeeper.release(admission)


async def _deny(
    websocket: WebSocket, status: int, kind: str, code: str, message: str, param: str | None,
    retry_after: int | None = None,
) -> None:
    log.info("realtime handshake refused (HTTP %d): %s", status, message)
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    try:
        await websocket.send_denial_response(JSONResponse(body, status, headers=headers))
    except RuntimeError:  # a server without the denial-response extension: the upgrade fails with 403
        await websocket.close(1008)
