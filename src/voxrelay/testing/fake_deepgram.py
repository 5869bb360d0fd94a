"""A scriptable fake of Deepgram's Live API (`/v1/listen`) on loopback, for tests: asyncio and websockets.

It speaks the wire protocol (query parameters, Results, Metadata, SpeechStarted,
UtteranceEnd, KeepAlive, Finalize, CloseStream, close codes) but recognizes nothing: it
answers canned text, timed by how much audio it got. What it answers is decided by the
sans-I/O core in `testing.deepgram_core` (which `bench.upstream` shares); this module is
its I/O: a websockets server, a reader and a writer task per connection, the clock for
`Script.reply_delay_s` and `idle_timeout_s`. A `Script` says how it behaves, including
faults: refuse the handshake (401), close 1011 with a NET-0000/NET-0001 reason, drop the
TCP connection mid-utterance, send malformed JSON, answer slowly, never answer
CloseStream, stop reading, or time out an idle stream like Deepgram does. Scripts are
chosen per connection by the `model` query parameter, so one fake serves healthy and
faulty sessions at once.

    async with FakeDeepgram(api_key="k", scripts={"drop": Script(fault="drop", fault_after_bytes=3200)}) as fake:
        ... point the deepgram engine at fake.url ...
        fake.connections[0].keepalives, fake.open_connections, await fake.wait_all_closed()

Run `python -m voxrelay.testing.fake_deepgram --port 8766` for a canned upstream (e.g.
load tests of the deepgram engine; `bench.upstream` is the faster one). It never logs
request headers, so a key sent to it stays out of logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import time
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voxrelay.protocol.deepgram_live import encode
from voxrelay.testing.deepgram_core import (
    Close,
    Connection,
    Drop,
    FakeListenApi,
    Hangup,
    ListenStream,
    Outgoing,
    Script,
    Stall,
)

__all__ = ["Connection", "FakeDeepgram", "Script"]

# Handshake records (and so the Authorization header) are logged at DEBUG: keep this logger above it.
_ws_log = logging.getLogger("voxrelay.testing.fake_deepgram.ws")
_ws_log.setLevel(logging.INFO)


class FakeDeepgram:
    """The fake server. `await start()` (or `async with`), then connect to `url`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        scripts: dict[str, Script] | None = None,
        default: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api = FakeListenApi(api_key=api_key, scripts=scripts, default=default)
        self._host = host
        self._port = port
        self._server: Server | None = None
        self._changed: asyncio.Condition | None = None

    @property
    def connections(self) -> list[Connection]:
        """What the fake saw, one record per connection, in order (tests may clear it)."""
        return self.api.connections

    @property
    def scripts(self) -> dict[str, Script]:
        return self.api.scripts

    @property
    def default(self) -> Script:
        return self.api.default

    @property
    def faulted_models(self) -> set[str]:
        return self.api.faulted_models

    async def start(self) -> FakeDeepgram:
        self._changed = asyncio.Condition()
        self._server = await serve(
            self._handle,
            self._host,
            self._port,
            process_request=self._check,
            logger=_ws_log,
            max_size=None,
            close_timeout=2,  # a client that stopped answering (a stalled test) is not waited on for long
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeDeepgram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """The base URL to give an SDK or `VOXRELAY_DEEPGRAM_URL` (the path /v1/listen is added by the client)."""
        return f"ws://{self._host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return self.api.open_connections

    async def wait_all_closed(self, timeout: float = 10.0) -> None:
        """Wait until every connection so far has closed; raises TimeoutError after `timeout`."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.open_connections == 0), timeout)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        refusal = self.api.refusal(request.path, request.headers)
        if refusal is None:
            return None
        return connection.respond(HTTPStatus(refusal.status), refusal.body)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None and self._changed is not None
        stream = self.api.open(ws.request.path, ws.request.headers)
        try:
            await _Connection(ws, stream).run()
        finally:
            stream.closed()
            async with self._changed:
                self._changed.notify_all()


class _Connection:
    """One connection's I/O: frames into the stream, its answers out (on time), its faults done."""

    def __init__(self, ws: ServerConnection, stream: ListenStream) -> None:
        self.ws = ws
        self.stream = stream
        self.closer: asyncio.Task[None] | None = None
        self.outbox: asyncio.Queue[tuple[float, Outgoing]] = asyncio.Queue()
        self.stalled: float | None = None  # Stall: stop reading, drop after this many seconds

    async def run(self) -> None:
        stream = self.stream
        writer = asyncio.create_task(self._write())
        try:
            while True:
                try:
                    message = await asyncio.wait_for(self.ws.recv(), stream.idle_timeout_s)
                except asyncio.TimeoutError:
                    stream.idle()
                else:
                    if isinstance(message, bytes):
                        stream.receive_audio(message)
                    else:
                        stream.receive_text(message)
                if not self._act(stream.outgoing()):
                    return
                if self.stalled is not None:
                    # Read nothing more (the client's sends back up); with reading paused a
                    # client's close goes unseen, so give up on the connection after a while.
                    await asyncio.sleep(self.stalled)
                    self.ws.transport.abort()
                    return
        except ConnectionClosed:
            return
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if self.closer is not None:
                await self.closer

    def _act(self, items: list[Outgoing]) -> bool:
        """Carry out the stream's answers; False once the connection is dropped."""
        for item in items:
            if isinstance(item, Drop):
                self.ws.transport.abort()
                return False
            if isinstance(item, Hangup):
                # Close in the background and keep reading, as a server does: a handler that stopped
                # reading would stall the client's send and its echo of the close frame.
                self.closer = asyncio.create_task(self.ws.close(item.code, item.reason))
            elif isinstance(item, Stall):
                self.stalled = item.seconds
            else:
                self.outbox.put_nowait((time.monotonic() + self.stream.script.reply_delay_s, item))
        return True

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                due, item = await self.outbox.get()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # the scripted latency of a slow upstream
                if isinstance(item, Close):
                    await self.ws.close(item.code, item.reason)
                    return
                assert not isinstance(item, (Hangup, Drop, Stall))
                await self.ws.send(item if isinstance(item, str) else encode(item))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Deepgram /v1/listen answering canned Results.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--api-key", default=None, help="require `Authorization: Token KEY` (default: accept any)")
    parser.add_argument("--final-every", type=float, default=1.0, help="audio seconds per automatic final")
    parser.add_argument("--stamp", action="store_true", help="append the send time (monotonic ns) to transcripts")
    args = parser.parse_args(argv)

    async def serve_forever() -> None:
        fake = FakeDeepgram(
            api_key=args.api_key,
            default=Script(final_every_s=args.final_every, stamp_transcripts=args.stamp),
            host=args.host,
            port=args.port,
        )
        async with fake:
            print(f"fake Deepgram listening on {fake.url}/v1/listen", flush=True)
            await asyncio.Future()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever())


if __name__ == "__main__":
    main()
