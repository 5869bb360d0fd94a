"""`/stt-stream`: admission, then the `/stt-stream` codec on the one connection runner."""

from __future__ import annotations

import logging
import uuid

from fastapi import APIRouter, WebSocket

from voxrelay.gateway.connection import Connection
from voxrelay.gateway.state import Gateway
from voxrelay.ops import logs
from voxrelay.protocol import messages as m
from voxrelay.protocol.stt_stream import Session, SessionLimits, SttStreamCodec
from voxrelay.security.admission import Refusal, deny

__all__ = ["create_router", "serve"]

log = logging.getLogger("voxrelay")


def create_router(gateway: Gateway) -> APIRouter:
    router = APIRouter()

    @router.websocket("/stt-stream")
    async def stt_stream(websocket: WebSocket) -> None:
        await serve(websocket, gateway)

    return router


async def serve(websocket: WebSocket, gateway: Gateway) -> None:
    """One `/stt-stream` connection: admit, then run it."""
    sid = uuid.uuid4().hex
    logs.session_id.set(sid)  # inherited by the tasks the runner creates
    stats = gateway.metrics.session("stt-stream")
    try:
        admission = gateway.admit(websocket, "bearer")
    except Refusal as refusal:
        stats.refused(refusal.code)
        if refusal.kind == "engine":
            await _refuse_after_upgrade(websocket, refusal)  # /stt-stream's form: error message, close 1013
        else:
            await deny(websocket, refusal)
        return
    settings = gateway.settings
    session = Session(sid, gateway.engine.name, SessionLimits(settings.max_text_frame, settings.max_audio_frame))
    connection = Connection(
        websocket, gateway, SttStreamCodec(session), stats,
        session_id=sid, admission=admission, idle_timeout_s=settings.idle_timeout_s,
    )
    try:
        await connection.run(lambda: websocket.accept(subprotocol=admission.subprotocol))
    finally:
        gateway.gatekeeper.release(admission)


async def _refuse_after_upgrade(websocket: WebSocket, refusal: Refusal) -> None:
    log.info("session refused after the upgrade: %s", refusal.reason)
    await websocket.accept()
    await websocket.send_text(m.encode(m.ErrorMessage("engine_unavailable", refusal.reason)))
    await websocket.close(1013, refusal.reason.encode()[:120].decode(errors="ignore"))
