"""A fast fake Deepgram upstream for the proxy benchmark: `/v1/listen` on loopback, canned Results.

`voxrelay.testing.fake_deepgram` is the scriptable fake the tests use (faults, timing
scripts, records of what it saw); it runs a task or two per connection. Measuring a
gateway at a thousand streams needs an upstream that costs little next to it, so this
one is websockets' sans-I/O `ServerProtocol` on a plain asyncio `Protocol`: bytes in,
frames out, no task per connection and none per message (the pattern of rule 1 in
docs: the protocol core kept apart from the I/O).

It answers like `fake_deepgram --stamp` does: per `interim_every_s` of audio an interim
Results whose transcript grows, per `final_every_s` a final one (speech_final); Finalize
and CloseStream flush a final; CloseStream then sends Metadata and closes 1000. Every
transcript ends with ` t<CLOCK_MONOTONIC ns at send>`, which the load generator reads
to time the relay.

    python -m voxrelay.bench.upstream --port 8766 --api-key KEY
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import time
import uuid
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from voxrelay.bench.sansio import run_on_uvloop, write_out
from voxrelay.engines.base import Word
from voxrelay.protocol.deepgram_live import MetadataMessage, ModelInfo, ResultsMessage, encode

__all__ = ["FastUpstream", "serve"]

_MODEL = ModelInfo("fake-deepgram", "0", "fake")
_TRANSCRIPT = "the quick brown fox jumps over the lazy dog".split()


class _Listen(asyncio.Protocol):
    """One `/v1/listen` connection: handshake, then audio in and Results out."""

    def __init__(self, api_key: str | None, interim_every_s: float, final_every_s: float) -> None:
        self._ws = ServerProtocol(max_size=1 << 20)
        self._api_key = api_key
        self._interim_every = interim_every_s
        self._final_every = final_every_s
        self._transport: asyncio.Transport | None = None
        self._open = False
        self._bytes_per_s = 32000
        self._interim_results = False
        self._request_id = str(uuid.uuid4())
        self._audio_bytes = 0
        self._segment_start = 0.0
        self._next_interim = interim_every_s
        self._interims = 0

    # asyncio.Protocol: the only I/O.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def _flush(self) -> None:
        assert self._transport is not None
        write_out(self._ws, self._transport)

    # The protocol.

    def _handshake(self, request: Request) -> None:
        url = urlsplit(request.path)
        token = request.headers.get("Authorization", "")
        if url.path.rstrip("/") != "/v1/listen":
            response = self._ws.reject(HTTPStatus.NOT_FOUND, "not found\n")
        elif self._api_key is not None and not hmac.compare_digest(token, f"Token {self._api_key}"):
            response = self._ws.reject(HTTPStatus.UNAUTHORIZED, "invalid credentials\n")
        else:
            response = self._ws.accept(request)
            params = parse_qs(url.query)
            rate = int(params.get("sample_rate", ["16000"])[0])
            channels = int(params.get("channels", ["1"])[0])
            self._bytes_per_s = 2 * rate * channels
            self._interim_results = params.get("interim_results", ["false"])[0] == "true"
            self._open = True
        self._ws.send_response(response)

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.BINARY:
            self._on_audio(len(frame.data))
        elif frame.opcode is Opcode.TEXT:
            try:
                kind = json.loads(frame.data).get("type")
            except (ValueError, AttributeError):
                return
            if kind == "Finalize":
                self._final(speech_final=False, from_finalize=True)
            elif kind == "CloseStream":
                self._final(speech_final=True, from_finalize=False)
                metadata = MetadataMessage(self._request_id, _MODEL, "0" * 64, "", self._audio_s, 1)
                self._ws.send_text(encode(metadata).encode())
                self._ws.send_close(1000)

    @property
    def _audio_s(self) -> float:
        return self._audio_bytes / self._bytes_per_s

    def _on_audio(self, size: int) -> None:
        self._audio_bytes += size
        heard = self._audio_s - self._segment_start
        if self._interim_results and heard >= self._next_interim:
            self._next_interim += self._interim_every
            self._interims += 1
            self._send_results(final=False)
        if heard >= self._final_every:
            self._final(speech_final=True, from_finalize=False)

    def _final(self, *, speech_final: bool, from_finalize: bool) -> None:
        if self._audio_s <= self._segment_start:
            return  # nothing new to finalize
        self._send_results(final=True, speech_final=speech_final, from_finalize=from_finalize)
        self._segment_start = self._audio_s
        self._next_interim = self._interim_every
        self._interims = 0

    def _send_results(self, *, final: bool, speech_final: bool = False, from_finalize: bool = False) -> None:
        count = len(_TRANSCRIPT) if final else min(len(_TRANSCRIPT), self._interims)
        start, end = self._segment_start, self._audio_s
        step = (end - start) / len(_TRANSCRIPT)
        words = tuple(Word(w, start + i * step, start + (i + 1) * step, 0.99, w) for i, w in enumerate(_TRANSCRIPT[:count]))
        # Stamped last, just before the frame is written: the relay's clock starts here.
        transcript = f"{' '.join(_TRANSCRIPT[:count])} t{time.monotonic_ns()}"
        message = ResultsMessage(
            self._request_id, _MODEL, start, end - start, final, speech_final, from_finalize, transcript, 0.99, words
        )
        self._ws.send_text(encode(message).encode())


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
    ) -> None:
        self._api_key = api_key
        self._host = host
        self._port = port
        self._interim_every = interim_every_s
        self._final_every = final_every_s
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> FastUpstream:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Listen(self._api_key, self._interim_every, self._final_every), self._host, self._port, backlog=4096
        )
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
