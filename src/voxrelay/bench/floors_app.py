"""The stack floors' relay: the least a server can do for the proxy benchmark's clients, on several stacks.

A floor is what a WebSocket stack costs before any voxrelay logic: no sessions, limits,
metrics or protocol translation. It speaks just enough of `/stt-stream` for
`bench.loadgen`'s gateway clients: reads `configure`, opens one upstream connection to
the fake Deepgram (websockets' asyncio client, as the Deepgram engine does), answers
`ready`, relays binary frames upstream and the upstream's text (stamped Results) back
verbatim; `stop` becomes `CloseStream`, and when the upstream closes, the client is
closed with 1000. Every stack serves the same relay; what differs is the server:

- `uvicorn-websockets`, `uvicorn-sansio`, `uvicorn-wsproto`: a FastAPI app on uvicorn
  (httptools, uvloop) with each of uvicorn's WebSocket implementations; `uvicorn-sansio`
  is what `voxrelay serve` runs today (uvicorn 0.55 picks it for `ws="auto"`;
  `websockets` is the legacy implementation uvicorn deprecates).
- `websockets`: the `websockets` library's own asyncio server (on uvloop).
- `granian-asgi`: the same FastAPI app on granian (a Rust HTTP/WebSocket server), uvloop.
- `granian-rsgi`: granian's own interface (RSGI), no ASGI layer, uvloop.

Each answers `GET /healthz` (so the runner knows it is up) and applies voxrelay's GC
settings (`ops.gc_tuning`), as `voxrelay serve` does.

    python -m voxrelay.bench.floors_app --stack websockets --port 9000 --upstream ws://127.0.0.1:8766
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, WebSocket
from websockets.asyncio.client import ClientConnection, connect

from voxrelay.ops.gc_tuning import tune_for_serving

__all__ = ["STACKS", "VOXRELAY_ON_GRANIAN", "asgi_app", "rsgi_app", "serve", "voxrelay_app"]

STACKS = ("uvicorn-websockets", "uvicorn-sansio", "uvicorn-wsproto", "websockets", "granian-asgi", "granian-rsgi")
# Not a floor: voxrelay's own app (settings from the environment, as `voxrelay serve` reads them) on granian.
VOXRELAY_ON_GRANIAN = "voxrelay-granian"

UPSTREAM_ENV = "VOXRELAY_FLOOR_UPSTREAM"  # the fake Deepgram's base URL (granian imports the app in its worker)
KEY_ENV = "VOXRELAY_FLOOR_KEY"
MAX_SIZE = 1 << 20  # as the gateway's ws_max_size order of magnitude: one audio frame is 3,200 bytes
READY = '{"type": "ready"}'
CLOSE_STREAM = '{"type": "CloseStream"}'
_QUERY = "/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"


def _open_upstream() -> connect:
    return connect(
        os.environ[UPSTREAM_ENV] + _QUERY,
        additional_headers={"Authorization": f"Token {os.environ.get(KEY_ENV, '')}"},
        compression=None,  # as the Deepgram engine: audio barely compresses
        max_size=MAX_SIZE,
    )


async def _relay_back(upstream: ClientConnection, send_text: Callable[[str], Awaitable[None]]) -> None:
    """Every upstream message to the client, verbatim, until the upstream closes."""
    async for message in upstream:
        await send_text(message if isinstance(message, str) else message.decode())


# ASGI (uvicorn, granian-asgi): a FastAPI app, as voxrelay's gateway is.


def asgi_app() -> FastAPI:
    """The FastAPI floor (a factory: uvicorn and granian call it in the serving process)."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/stt-stream")
    async def stt_stream(ws: WebSocket) -> None:
        await ws.accept()
        await ws.receive_text()  # configure
        async with _open_upstream() as upstream:
            await ws.send_text(READY)
            back = asyncio.ensure_future(_relay_back(upstream, ws.send_text))
            try:
                while True:
                    message = await ws.receive()
                    if message["type"] == "websocket.disconnect":
                        return
                    data = message.get("bytes")
                    if data is None:  # stop
                        await upstream.send(CLOSE_STREAM)
                        break
                    await upstream.send(data)
                await back
            finally:
                back.cancel()
        await ws.close(1000)

    tune_for_serving()
    return app


# RSGI (granian's own interface): the protocol objects are granian's, no ASGI messages.


def rsgi_app() -> Any:
    """The RSGI floor (a factory, for granian)."""
    from granian.rsgi import WebsocketMessageType

    async def app(scope: Any, protocol: Any) -> None:
        if scope.proto != "ws":
            ok = scope.path == "/healthz"
            protocol.response_str(200 if ok else 404, [("content-type", "text/plain")], "ok" if ok else "not found")
            return
        transport = await protocol.accept()
        await transport.receive()  # configure
        async with _open_upstream() as upstream:
            await transport.send_str(READY)
            back = asyncio.ensure_future(_relay_back(upstream, transport.send_str))
            try:
                while True:
                    message = await transport.receive()
                    if message.kind == WebsocketMessageType.close:
                        return
                    if message.kind == WebsocketMessageType.string:  # stop
                        await upstream.send(CLOSE_STREAM)
                        break
                    await upstream.send(message.data)
                await back
            finally:
                back.cancel()
        protocol.close(1000)

    tune_for_serving()
    return app


def voxrelay_app() -> FastAPI:
    """voxrelay's gateway app, built as `voxrelay serve` builds it (without its uvicorn-only drain on signals)."""
    from voxrelay.engines import create_engine
    from voxrelay.engines.settings import load_settings
    from voxrelay.gateway.app import create_app
    from voxrelay.settings import Settings

    settings = load_settings(Settings)
    app = create_app(settings, create_engine(settings.engine, {}))
    tune_for_serving()
    return app


# websockets' own server.


async def _websockets_handler(ws: Any) -> None:
    await ws.recv()  # configure
    async with _open_upstream() as upstream:
        await ws.send(READY)
        back = asyncio.ensure_future(_relay_back(upstream, ws.send))
        try:
            async for message in ws:
                if isinstance(message, str):  # stop
                    await upstream.send(CLOSE_STREAM)
                    break
                await upstream.send(message)
            else:
                return
            await back
        finally:
            back.cancel()
    await ws.close(1000)


async def _serve_websockets(host: str, port: int) -> None:
    from websockets.asyncio.server import serve as ws_serve
    from websockets.http11 import Request, Response

    def healthz(connection: Any, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")  # type: ignore[no-any-return]
        return None

    async with ws_serve(
        _websockets_handler, host, port, process_request=healthz, compression=None, max_size=MAX_SIZE, backlog=4096
    ) as server:
        tune_for_serving()
        await server.serve_forever()


def serve(stack: str, host: str, port: int) -> None:
    """Serve the floor on `stack` until interrupted (the upstream comes from the environment)."""
    if stack.startswith("uvicorn-"):
        import uvicorn

        ws = {"uvicorn-websockets": "websockets", "uvicorn-sansio": "websockets-sansio", "uvicorn-wsproto": "wsproto"}
        uvicorn.run(
            "voxrelay.bench.floors_app:asgi_app",
            factory=True,
            host=host,
            port=port,
            loop="uvloop",
            http="httptools",
            ws=ws[stack],
            ws_max_size=MAX_SIZE,
            ws_per_message_deflate=False,
            log_level="warning",
            backlog=4096,
        )
    elif stack == "websockets":
        from voxrelay.bench.sansio import run_on_uvloop

        run_on_uvloop(_serve_websockets(host, port))
    elif stack.startswith("granian-") or stack == VOXRELAY_ON_GRANIAN:
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        asgi = stack != "granian-rsgi"
        factory = {"granian-asgi": "asgi_app", "granian-rsgi": "rsgi_app", VOXRELAY_ON_GRANIAN: "voxrelay_app"}[stack]
        Granian(
            "voxrelay.bench.floors_app:" + factory,
            factory=True,
            address=host,
            port=port,
            interface=Interfaces.ASGI if asgi else Interfaces.RSGI,
            workers=1,
            loop=Loops.uvloop,
            backlog=4096,  # backpressure (concurrent connections per worker) defaults to the backlog
            log_level=LogLevels.warning,
        ).serve()
    else:
        raise ValueError(f"unknown stack {stack!r}: one of {', '.join(STACKS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A minimal /stt-stream relay on one WebSocket stack (a floor).")
    parser.add_argument("--stack", choices=(*STACKS, VOXRELAY_ON_GRANIAN), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the fake Deepgram's base URL, ws://HOST:PORT")
    parser.add_argument("--api-key", default="")
    args = parser.parse_args(argv)
    os.environ[UPSTREAM_ENV] = args.upstream
    os.environ[KEY_ENV] = args.api_key
    serve(args.stack, args.host, args.port)


if __name__ == "__main__":
    main()
