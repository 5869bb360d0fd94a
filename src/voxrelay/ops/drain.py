"""Graceful drain: finish every live session before the process exits.

uvicorn, on SIGTERM, closes its listeners and at once sends 1012 to every WebSocket,
which would cut sessions off before their final transcripts. voxrelay drains first:

1. readiness goes false (`Gateway.draining`), new handshakes get 503 + Retry-After;
2. each live session gets a `warning` (`draining`) and, once the frames its client had
   already sent are read (`InputCut`), is stopped as if its client had sent `stop`: the
   engine flushes, the client receives its finals, `stopped`, close 1000;
3. sessions still open after `drain_timeout_s` are closed with 1012;
4. then the process exits (`on_drained`).

It starts from `POST /admin/drain` (loopback peers, or `Authorization: Bearer ADMIN_KEY`),
or from SIGTERM/SIGINT through `DrainingServer`, whose `handle_exit` runs before
uvicorn's own shutdown. A second signal exits at once (uvicorn's behaviour).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import uvicorn
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxrelay.security.auth import is_loopback_host

__all__ = ["Drainable", "Drainer", "DrainingServer", "InputCut", "create_admin_router"]

log = logging.getLogger("voxrelay.ops.drain")


class Drainable(Protocol):
    def drain(self) -> None:
        """Warn the client and stop the session gracefully."""

    def force_close(self) -> None:
        """Close now with 1012 (the drain deadline passed)."""


class InputCut:
    """Where a drained session's input ends: after every frame the server already holds.

    Why (the drain race): `drain()` used to stop the session at once, from the drain task.
    Audio the client had sent before the drain, but which the connection's read task had not
    yet taken from `await websocket.receive()` (still in the socket buffer or in the ASGI
    server's message queue), then reached a FINALIZING session and was dropped as "audio
    after stop"; its finals never came. So the drain only warns at once, and the stop waits
    until the read task has been idle in `receive()` (no frame in hand) for `quiet_s`, enough
    for frames already sent to arrive, or `grace_s` after the drain began, for a client that
    keeps streaming (what it sends after the cut is ignored, as after a `stop`). Either way it
    waits until the read task has finished its current frame.

    Call order: the read task calls `frame_started()` as soon as `receive()` returns a frame
    and `frame_done()` after running that frame's actions; `drain()` calls `begin(stop)`;
    `stop` then runs once, from the event loop; the connection calls `cancel()` when it ends.
    """

    def __init__(self, quiet_s: float = 0.3, grace_s: float = 2.0) -> None:
        self.quiet_s = quiet_s
        self.grace_s = grace_s
        self._busy = False
        self._last_frame = 0.0
        self._grace_end = 0.0
        self._stop: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def frame_started(self) -> None:
        self._busy = True

    def frame_done(self) -> None:
        self._busy = False
        if self._stop is not None:  # only a drain reads it (begin() sets it first): no clock per frame
            self._last_frame = asyncio.get_running_loop().time()

    def begin(self, stop: Callable[[], None]) -> None:
        """The drain began: call `stop` once the input is quiet (idempotent)."""
        if self._stop is not None:
            return
        now = asyncio.get_running_loop().time()
        self._stop = stop
        self._grace_end = now + self.grace_s
        self._last_frame = now  # quiet is counted from the drain at the earliest
        self._check()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = min(self._last_frame + self.quiet_s, self._grace_end)
        # Never while the read task is busy with a frame: it may be awaiting the engine's open, and
        # a stop run by another task before the stream exists is skipped (the stream never ends).
        if not self._busy and now >= due:
            self._timer = None
            self._stop()
            return
        self._timer = loop.call_at(due if due > now else now + self.quiet_s / 10, self._check)


class Drainer:
    """Runs one drain over the gateway's live connections."""

    def __init__(self, timeout_s: float, sessions: Callable[[], int]) -> None:
        self.timeout_s = timeout_s
        self._sessions = sessions
        self.connections: set[Drainable] = set()
        self.draining = False
        self.on_drained: Callable[[], None] | None = None
        self._task: asyncio.Task[dict[str, Any]] | None = None

    def start(self) -> asyncio.Task[dict[str, Any]]:
        """Begin draining (idempotent); the task's result says how it went."""
        if self._task is None:
            self.draining = True
            self._task = asyncio.get_running_loop().create_task(self._run(), name="voxrelay-drain")
        return self._task

    async def _run(self) -> dict[str, Any]:
        started = time.monotonic()
        live = self._sessions()
        log.warning("draining %d live session(s) (deadline %g s)", live, self.timeout_s)
        for connection in list(self.connections):
            connection.drain()
        deadline = started + self.timeout_s
        # Polls a count the connections own (no event to wait on yet; the connection runner could set one).
        while self._sessions() > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        forced = self._sessions()
        if forced:
            log.warning("drain deadline passed: closing %d session(s) with 1012", forced)
            for connection in list(self.connections):
                connection.force_close()
        result = {"sessions": live, "forced": forced, "seconds": round(time.monotonic() - started, 3)}
        log.warning("drained: %s", result)
        if self.on_drained is not None:
            self.on_drained()
        return result


def create_admin_router(drainer: Drainer, admin_key: str) -> APIRouter:
    router = APIRouter()

    @router.post("/admin/drain")
    async def drain(request: Request) -> JSONResponse:
        peer = request.client.host if request.client else ""
        scheme, _, credential = (request.headers.get("authorization") or "").partition(" ")
        by_key = bool(admin_key) and scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), admin_key.encode()
        )
        if not by_key and not is_loopback_host(peer):
            return JSONResponse(
                {"error": "forbidden", "message": "drain is allowed from loopback or with the admin key"}, 403
            )
        task = drainer.start()
        if request.query_params.get("wait", "").lower() in ("1", "true"):
            return JSONResponse({"status": "drained", **(await asyncio.shield(task))})
        return JSONResponse({"status": "draining"}, 202)

    return router


class DrainingServer(uvicorn.Server):
    """uvicorn's server, but the first SIGTERM/SIGINT drains the gateway before uvicorn shuts down."""

    def __init__(self, config: uvicorn.Config, drainer: Drainer) -> None:
        super().__init__(config)
        self.drainer = drainer
        self._exit_signal: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        drainer.on_drained = self._drained

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._exit_signal is not None:
            super().handle_exit(sig, frame)  # a second signal: uvicorn's own shutdown
            return
        self._exit_signal = (sig, frame)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.drainer.start)  # idempotent if /admin/drain began it
        else:
            super().handle_exit(sig, frame)

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def _drained(self) -> None:
        self.should_exit = True
