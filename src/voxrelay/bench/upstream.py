"""A fast fake Deepgram upstream for the proxy benchmark: `/v1/listen` on loopback, canned Results.

What it answers is the sans-I/O core the tests' fake uses (`testing.deepgram_core`); this
module is its cheapest I/O: websockets' sans-I/O `ServerProtocol` on a plain asyncio
`Protocol`, bytes in, frames out, no task per connection and none per message, so a
thousand streams cost little next to the gateway measured. (`testing.fake_deepgram` runs
the same core with a task or two per connection, for scripted faults and delays.)

By default it answers like `fake_deepgram --stamp`: per `interim_every_s` of audio an
interim Results whose transcript grows, per `final_every_s` a final one (speech_final);
Finalize and CloseStream flush a final; CloseStream then sends Metadata and closes 1000.
Every transcript ends with ` t<CLOCK_MONOTONIC ns at send>`, which the load generator
reads to time the relay.

    python -m voxrelay.bench.upstream --port 8766 --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http import HTTPStatus

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from voxrelay.bench.sansio import run_on_uvloop, write_out
from voxrelay.protocol.deepgram_live import encode
from voxrelay.testing.deepgram_core import Close, Drop, FakeListenApi, Hangup, ListenStream, Script, Stall

__all__ = ["BENCH_KEY", "FastUpstream", "running_upstream", "serve"]

BENCH_KEY = "bench-not-a-real-key"  # what the fake upstream expects, and the gateways under test are given


class _Listen(asyncio.Protocol):
    """One `/v1/listen` connection: handshake, then frames into the core and its answers out."""

    def __init__(self, api: FakeListenApi) -> None:
        self._ws = ServerProtocol(max_size=1 << 20)
        self._api = api
        self._transport: asyncio.Transport | None = None
        self._stream: ListenStream | None = None
        self._gone = False

    # asyncio.Protocol: the only I/O.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if self._gone:
                return
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Request):
                self._handshake(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        if self._stream is not None:
            self._stream.closed()

    def _flush(self) -> None:
        assert self._transport is not None
        write_out(self._ws, self._transport)

    # Frames in, the core's answers out.

    def _handshake(self, request: Request) -> None:
        refusal = self._api.refusal(request.path, request.headers)
        if refusal is not None:
            self._ws.send_response(self._ws.reject(HTTPStatus(refusal.status), refusal.body))
            return
        self._ws.send_response(self._ws.accept(request))
        self._stream = self._api.open(request.path, request.headers)

    def _on_frame(self, frame: Frame) -> None:
        stream = self._stream
        if stream is None:
            return
        if frame.opcode is Opcode.BINARY:
            stream.receive_audio(frame.data)
        elif frame.opcode is Opcode.TEXT:
            stream.receive_text(bytes(frame.data).decode())
        else:
            return
        for item in stream.outgoing():
            if isinstance(item, str):
                self._ws.send_text(item.encode())
            elif isinstance(item, (Close, Hangup)):
                self._ws.send_close(item.code, item.reason)
            elif isinstance(item, Drop):
                self._drop()
                return
            elif isinstance(item, Stall):
                assert self._transport is not None
                self._transport.pause_reading()
                asyncio.get_running_loop().call_later(item.seconds, self._drop)
                self._gone = True
                return
            else:
                self._ws.send_text(encode(item).encode())

    def _drop(self) -> None:
        self._gone = True
        if self._transport is not None:
            self._transport.abort()


class FastUpstream:
    """The server: `async with FastUpstream(port=0) as upstream:` then connect to `upstream.url`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        interim_every_s: float = 0.25,
        final_every_s: float = 1.0,
        script: Script | None = None,
    ) -> None:
        if script is None:
            script = Script(
                interim_every_s=interim_every_s,
                final_every_s=final_every_s,
                stamp_transcripts=True,
                speech_started=False,  # as measured so far: Results only, Metadata at the end
            )
        if script.reply_delay_s or script.idle_timeout_s is not None:
            # This shell keeps no timers per connection: scripts that need them run on testing.fake_deepgram.
            raise ValueError("the fast upstream does not run reply_delay_s or idle_timeout_s")
        # No records: a benchmark's thousands of connections would pile up in them.
        self.api = FakeListenApi(api_key=api_key, default=script, keep_records=False)
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> FastUpstream:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Listen(self.api), self._host, self._port, backlog=4096)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://{self._host}:{self.port}"


async def serve(host: str, port: int, api_key: str | None) -> None:
    async with FastUpstream(api_key=api_key, host=host, port=port) as upstream:
        print(f"fast fake Deepgram listening on {upstream.url}/v1/listen", flush=True)
        await asyncio.Future()


@contextlib.contextmanager
def running_upstream(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """This fake upstream as a subprocess on `port` (key `BENCH_KEY`), listening when this returns; stopped on exit."""
    upstream = subprocess.Popen(
        [sys.executable, "-m", "voxrelay.bench.upstream", "--port", str(port), "--api-key", BENCH_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if upstream.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the fake upstream did not start") from None
                time.sleep(0.05)  # polling a starting process
        yield upstream
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fast fake Deepgram /v1/listen for load benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--api-key", default=None, help="require `Authorization: Token KEY` (default: accept any)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        run_on_uvloop(serve(args.host, args.port, args.api_key))


if __name__ == "__main__":
    main()
