"""A scriptable fake of Deepgram's Live API (`/v1/listen`) on loopback, for tests and benchmarks.

It speaks the wire protocol (query parameters, Results, Metadata, SpeechStarted,
UtteranceEnd, KeepAlive, Finalize, CloseStream, close codes) but recognizes nothing:
it answers canned text, timed by how much audio it got. A `Script` says how it
behaves, including faults: refuse the handshake (401), close 1011 with a NET-0000/
NET-0001 reason, drop the TCP connection mid-utterance, send malformed JSON, answer
slowly, never answer CloseStream, or time out an idle stream like Deepgram does.
Scripts are chosen per connection by the `model` query parameter, so one fake serves
healthy and faulty sessions at once.

    async with FakeDeepgram(api_key="k", scripts={"drop": Script(fault="drop", fault_after_bytes=3200)}) as fake:
        ... point the deepgram engine at fake.url ...
        fake.connections[0].keepalives, fake.open_connections, await fake.wait_all_closed()

Run `python -m voxrelay.testing.fake_deepgram --port 8766` for a fast canned upstream
(e.g. load tests of the deepgram engine). It never logs request headers, so a key sent
to it stays out of logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voxrelay.engines.base import Word
from voxrelay.protocol.deepgram_live import (
    NET_0001_REASON,
    MetadataMessage,
    ModelInfo,
    ResultsMessage,
    ServerMessage,
    SpeechStartedMessage,
    UtteranceEndMessage,
    encode,
)

__all__ = ["Connection", "FakeDeepgram", "Script"]

# Handshake records (and so the Authorization header) are logged at DEBUG: keep this logger above it.
_ws_log = logging.getLogger("voxrelay.testing.fake_deepgram.ws")
_ws_log.setLevel(logging.INFO)
log = logging.getLogger("voxrelay.testing.fake_deepgram")

_MODEL = ModelInfo("fake-deepgram", "0", "fake")
_CONTAINER_BYTES_PER_S = 4000  # a nominal rate for compressed audio (Opus at ~32 kbit/s)


@dataclass(frozen=True)
class Script:
    """How the fake answers one connection.

    Attributes:
        transcript: the text of every final; interims are growing prefixes of it.
        interim_every_s: audio seconds between interim Results (when interim_results=true); 0 = none.
        final_every_s: audio seconds per automatic final (speech_final); None = finals only on
            Finalize and CloseStream.
        reply_delay_s: every answer is held back this long (a slow upstream).
        reject_status: answer the handshake with this HTTP status instead of upgrading.
        fault: what happens once `fault_after_bytes` of audio arrived: "drop" (TCP abort, no
            close frame), "close" (close with `close_code`/`close_reason`), "malformed" (a text
            frame that is not JSON).
        idle_timeout_s: close 1011 NET-0001 after this long with neither audio nor a message.
        ignore_close_stream: never answer CloseStream (the client has to give up).
        fault_once: the fault hits only the first connection with this `model` (a reconnect
            with the same options then succeeds), so faults can be survived.
        words_from_audio: a final's words are checksums of its audio, one per 100 ms
            (`w1a2b3c4d`), so equal transcripts mean the same audio arrived, in order.
        stall_after_bytes: stop reading once this much audio arrived (TCP backpressure: the
            client's sends block, as with a hung upstream); drop the connection `stall_s` later.
    """

    transcript: str = "the quick brown fox jumps over the lazy dog"
    interim_every_s: float = 0.25
    final_every_s: float | None = None
    reply_delay_s: float = 0.0
    reject_status: int | None = None
    fault: Literal["drop", "close", "malformed"] | None = None
    fault_after_bytes: int = 0
    close_code: int = 1011
    close_reason: str = "NET-0000: the service did not transmit a text frame within the timeout window"
    idle_timeout_s: float | None = None
    ignore_close_stream: bool = False
    fault_once: bool = False
    words_from_audio: bool = False
    stamp_transcripts: bool = False  # append " t<time.monotonic_ns() at send>" to every transcript (benchmarks)
    stall_after_bytes: int | None = None
    stall_s: float = 3.0


@dataclass
class Connection:
    """What the fake saw on one connection (never the key itself: only whether it matched)."""

    params: dict[str, list[str]]
    authorized: bool
    script: Script
    audio_bytes: int = 0
    keepalives: int = 0
    finalizes: int = 0
    close_streams: int = 0
    messages: list[str] = field(default_factory=list)  # control message types, in order
    extensions: str | None = None  # the Sec-WebSocket-Extensions header the client offered
    closed: bool = False

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


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
        self._api_key = api_key
        self.scripts = dict(scripts or {})
        self.default = default or Script()
        self._host = host
        self._port = port
        self._server: Server | None = None
        self.connections: list[Connection] = []
        self.faulted_models: set[str] = set()  # for Script.fault_once
        self._changed: asyncio.Condition | None = None

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
        return sum(1 for c in self.connections if not c.closed)

    async def wait_all_closed(self, timeout: float = 10.0) -> None:
        """Wait until every connection so far has closed; raises TimeoutError after `timeout`."""
        assert self._changed is not None
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.open_connections == 0), timeout)

    # The handshake.

    def _script_for(self, params: dict[str, list[str]]) -> Script:
        model = (params.get("model") or [""])[0]
        return self.scripts.get(model, self.default)

    def _authorized(self, headers: Headers) -> bool:
        if self._api_key is None:
            return True
        scheme, _, credential = (headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "token" and hmac.compare_digest(credential.encode(), self._api_key.encode())

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path.rstrip("/") != "/v1/listen":
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        script = self._script_for(parse_qs(url.query))
        if not self._authorized(request.headers):
            return connection.respond(
                HTTPStatus.UNAUTHORIZED, '{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}'
            )
        if script.reject_status is not None:
            return connection.respond(HTTPStatus(script.reject_status), '{"err_code":"SCRIPTED","err_msg":"refused"}')
        return None

    # One connection.

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None and self._changed is not None
        params = parse_qs(urlsplit(ws.request.path).query)
        record = Connection(params, self._authorized(ws.request.headers), self._script_for(params))
        record.extensions = ws.request.headers.get("Sec-WebSocket-Extensions")
        self.connections.append(record)
        try:
            await _Stream(ws, record, self.faulted_models).run()
        finally:
            record.closed = True
            async with self._changed:
                self._changed.notify_all()


class _Stream:
    """The fake's side of one stream: counts audio, answers on schedule, runs the script's fault."""

    def __init__(self, ws: ServerConnection, record: Connection, faulted_models: set[str] | None = None) -> None:
        self.faulted_models = faulted_models if faulted_models is not None else set()
        self.segment = bytearray()  # this segment's audio (Script.words_from_audio)
        self.ws = ws
        self.record = record
        self.script = record.script
        self.request_id = str(uuid.uuid4())
        encoding = record.param("encoding")
        if encoding == "linear16":
            rate = int(record.param("sample_rate") or 16000)
            self.bytes_per_s = rate * int(record.param("channels") or 1) * 2
        else:
            self.bytes_per_s = _CONTAINER_BYTES_PER_S
        self.interim_results = record.param("interim_results") == "true"
        self.vad_events = record.param("vad_events") == "true"
        self.utterance_end = record.param("utterance_end_ms") is not None
        self.segment_start = 0.0  # audio seconds where the current (not yet final) segment began
        self.next_interim = self.script.interim_every_s
        self.interims = 0
        self.speaking = False
        self.faulted = False
        self.closer: asyncio.Task[None] | None = None
        self.outbox: asyncio.Queue[tuple[float, ServerMessage | str | int]] = asyncio.Queue()

    @property
    def audio_s(self) -> float:
        return self.record.audio_bytes / self.bytes_per_s

    async def run(self) -> None:
        writer = asyncio.create_task(self._write())
        try:
            while True:
                try:
                    idle = None if self.closer is not None else self.script.idle_timeout_s
                    message = await asyncio.wait_for(self.ws.recv(), idle)
                except asyncio.TimeoutError:
                    self._close_soon(1011, NET_0001_REASON)
                    continue
                if isinstance(message, bytes):
                    await self._on_audio(message)
                    stall = self.script.stall_after_bytes
                    if stall is not None and self.record.audio_bytes >= stall:
                        # Read nothing more (the client's sends back up); with reading paused a
                        # client's close goes unseen, so give up on the connection after a while.
                        await asyncio.sleep(self.script.stall_s)
                        self.ws.transport.abort()
                        return
                else:
                    self._on_text(message)
        except ConnectionClosed:
            return
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            if self.closer is not None:
                await self.closer

    async def _on_audio(self, data: bytes) -> None:
        self.record.audio_bytes += len(data)
        script = self.script
        if self.faulted and script.fault == "close":
            return  # closing: a server that gave up on the stream answers nothing more
        model = self.record.param("model") or ""
        if (
            script.fault is not None
            and not self.faulted
            and self.record.audio_bytes >= script.fault_after_bytes
            and not (script.fault_once and model in self.faulted_models)
        ):
            self.faulted = True
            self.faulted_models.add(model)
            if script.fault == "drop":
                self.ws.transport.abort()
                return
            if script.fault == "close":
                self._close_soon(script.close_code, script.close_reason)
                return
            self._queue("{this is not json")
        if script.words_from_audio:
            self.segment += data
        if not self.speaking:
            self.speaking = True
            if self.vad_events:
                self._queue(SpeechStartedMessage(self.segment_start))
        if (
            self.interim_results
            and script.interim_every_s > 0
            and self.audio_s - self.segment_start >= self.next_interim
        ):
            self.next_interim += script.interim_every_s
            self.interims += 1
            self._queue(self._results(final=False))
        if script.final_every_s is not None and self.audio_s - self.segment_start >= script.final_every_s:
            self._final(speech_final=True, from_finalize=False)

    def _close_soon(self, code: int, reason: str) -> None:
        # Close in the background and keep reading, as a server does: a handler that stopped
        # reading would stall the client's send and its echo of the close frame.
        self.closer = asyncio.create_task(self.ws.close(code, reason))

    def _on_text(self, text: str) -> None:
        kind = _message_type(text)
        self.record.messages.append(kind)
        if self.faulted and self.script.fault == "close":
            return  # closing after a fault: nothing more is answered
        if kind == "KeepAlive":
            self.record.keepalives += 1
        elif kind == "Finalize":
            self.record.finalizes += 1
            self._final(speech_final=False, from_finalize=True)
        elif kind == "CloseStream":
            self.record.close_streams += 1
            if self.script.ignore_close_stream:
                return
            self._final(speech_final=True, from_finalize=False)
            self._queue(
                MetadataMessage(
                    self.request_id, _MODEL, "0" * 64, _now(), self.audio_s, int(self.record.param("channels") or 1)
                )
            )
            self._queue(1000)  # then close

    def _final(self, *, speech_final: bool, from_finalize: bool) -> None:
        if self.audio_s <= self.segment_start:
            return  # nothing new to finalize
        self._queue(self._results(final=True, speech_final=speech_final, from_finalize=from_finalize))
        end = self.audio_s
        if self.utterance_end:
            self._queue(UtteranceEndMessage(end))
        self.segment_start = end
        self.segment = bytearray()
        self.next_interim = self.script.interim_every_s
        self.interims = 0
        self.speaking = False

    def _results(self, *, final: bool, speech_final: bool = False, from_finalize: bool = False) -> ResultsMessage:
        all_words = self.script.transcript.split()
        if self.script.words_from_audio:
            block = max(2, self.bytes_per_s // 10)
            seg = bytes(self.segment)
            all_words = [f"w{zlib.crc32(seg[i : i + block]):08x}" for i in range(0, len(seg), block)] or ["-"]
        count = len(all_words) if final else min(len(all_words), self.interims)
        start, end = self.segment_start, max(self.audio_s, self.segment_start)
        step = (end - start) / max(len(all_words), 1)
        words = tuple(
            Word(w.strip(".,?!").lower(), start + i * step, start + (i + 1) * step, 0.99, w)
            for i, w in enumerate(all_words[:count])
        )
        return ResultsMessage(
            self.request_id,
            _MODEL,
            start,
            end - start,
            final,
            speech_final,
            from_finalize,
            " ".join(all_words[:count]),
            0.99 if count else 0.0,
            words,
        )

    def _queue(self, item: ServerMessage | str | int) -> None:
        self.outbox.put_nowait((time.monotonic() + self.script.reply_delay_s, item))

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                due, item = await self.outbox.get()
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)  # the scripted latency of a slow upstream
                if isinstance(item, int):
                    await self.ws.close(item)
                    return
                if self.script.stamp_transcripts and isinstance(item, ResultsMessage):
                    # Benchmarks measure relay latency from this stamp (CLOCK_MONOTONIC is system-wide).
                    item = dataclasses.replace(item, transcript=f"{item.transcript} t{time.monotonic_ns()}")
                await self.ws.send(item if isinstance(item, str) else encode(item))


def _message_type(text: str) -> str:
    try:
        data: Any = json.loads(text)
    except ValueError:
        return "invalid"
    return str(data.get("type")) if isinstance(data, dict) else "invalid"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
