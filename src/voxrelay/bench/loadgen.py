"""The proxy benchmark's load: N real-time audio streams over WebSocket, each timing what comes back.

A stream sends 100 ms linear16 frames paced like a live microphone, then ends the
audio, and reads every message until the server closes. The upstream stamps each
transcript with its send time (`... t<CLOCK_MONOTONIC ns>`, see `bench.upstream`),
so a stream times every transcript it receives, straight from the upstream or
relayed by the gateway. Two protocols:

- `direct`: Deepgram's `/v1/listen` (audio frames, then `CloseStream`);
- `gateway`: voxrelay's `/stt-stream` (`configure`, audio frames, then `stop`).

Like `bench.upstream`, each stream is websockets' sans-I/O `ClientProtocol` on an
asyncio `Protocol` (no task per stream or per message), so one process can drive a
thousand streams and still cost little next to the gateway it measures.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from voxrelay.bench.sansio import write_out

__all__ = ["LoadResult", "run_load"]

FRAME_BYTES = 3200  # 100 ms of 16 kHz mono linear16
FRAME_S = 0.1
SETTLE_S = 1.0  # transitions kept out of the steady state (see LoadResult.steady_latencies_s)
_FRAME = b"\x00\x01" * (FRAME_BYTES // 2)
_STAMP = re.compile(rb' t(\d+)"')

Protocol = Literal["direct", "gateway"]


@dataclass
class LoadResult:
    streams: int
    latencies_s: list[float] = field(default_factory=list)  # upstream send -> client receive, every transcript
    sent_ns: list[int] = field(default_factory=list)  # the upstream's send time of each (same order)
    ready_s: list[float] = field(default_factory=list)  # per stream: connect -> ready to stream audio
    failures: list[str] = field(default_factory=list)  # one line per stream that did not end cleanly
    all_ready_ns: int | None = None  # when the last stream became ready (through a gateway: its upstream is open)
    first_end_ns: int | None = None  # when the first stream ended its audio

    def steady_latencies_s(self) -> list[float]:
        """Latencies of transcripts sent in the steady state: every stream ready and streaming.

        Ramp-up (a thousand handshakes in a second) and ramp-down (a thousand teardowns) cost a
        gateway more than relaying does, and their backlog spills over: the window starts
        `SETTLE_S` after the last stream became ready and ends `SETTLE_S / 2` before the first
        one ended its audio. `latencies_s` keeps the whole run.
        """
        window = self._steady_window()
        if window is None:
            return []
        lo, hi = window
        return [latency for sent, latency in zip(self.sent_ns, self.latencies_s, strict=True) if lo <= sent <= hi]

    @property
    def steady_s(self) -> float:
        window = self._steady_window()
        return 0.0 if window is None else (window[1] - window[0]) / 1e9

    def _steady_window(self) -> tuple[int, int] | None:
        if self.all_ready_ns is None or self.first_end_ns is None:
            return None
        lo = self.all_ready_ns + int(SETTLE_S * 1e9)
        hi = self.first_end_ns - int(SETTLE_S / 2 * 1e9)
        return (lo, hi) if hi > lo else None


class _Stream(asyncio.Protocol):
    """One client stream; `done` resolves when its connection is gone."""

    def __init__(self, load: _Load, connecting_ns: int) -> None:
        self._load = load
        self._connecting_ns = connecting_ns
        self._ws = ClientProtocol(parse_uri(load.url), max_size=1 << 20)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._sent = 0
        self._started = 0.0
        self._clean = False
        self.done: asyncio.Future[None] = self._loop.create_future()

    # asyncio.Protocol.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        request = self._ws.connect()
        if self._load.protocol == "direct":
            request.headers["Authorization"] = f"Token {self._load.api_key}"
        self._ws.send_request(request)
        self._flush()

    def data_received(self, data: bytes) -> None:
        received = time.monotonic_ns()  # before any parsing: the relay's clock stops here
        self._ws.receive_data(data)
        for event in self._ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    stamp = _STAMP.search(event.data)
                    if stamp is not None:
                        sent = int(stamp[1])
                        self._load.result.latencies_s.append((received - sent) / 1e9)
                        self._load.result.sent_ns.append(sent)
                    elif self._load.protocol == "gateway" and b'"ready"' in event.data:
                        self._ready(received)
                elif event.opcode is Opcode.CLOSE:
                    self._clean = self._ws.close_rcvd is not None and self._ws.close_rcvd.code == 1000
            elif isinstance(event, Response):
                self._opened()
        self._flush()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._clean and not self._load.timed_out:
            why = self._ws.handshake_exc or self._ws.close_rcvd or exc or "connection closed before the close handshake"
            self._load.result.failures.append(str(why))
        if not self.done.done():
            self.done.set_result(None)

    def _flush(self) -> None:
        assert self._transport is not None
        write_out(self._ws, self._transport)
        if self._ws.state is State.CLOSED:
            self._transport.close()  # both closes exchanged: the client need not wait for the server's FIN

    # The stream.

    def _opened(self) -> None:
        if self._ws.handshake_exc is not None:
            return  # connection_lost reports it
        if self._load.protocol == "gateway":
            # Audio may follow configure at once (the gateway holds it while the upstream opens),
            # as a microphone's would; `ready` says when the upstream connection is up.
            self._ws.send_text(b'{"action": "configure", "audio_format": {"encoding": "linear16"}}')
        else:
            self._ready(time.monotonic_ns())
        self._load.stream_opened()
        self._started = self._loop.time()
        self._send_frame()

    def _ready(self, now_ns: int) -> None:
        result = self._load.result
        result.ready_s.append((now_ns - self._connecting_ns) / 1e9)
        if len(result.ready_s) == result.streams:
            result.all_ready_ns = now_ns

    def _send_frame(self) -> None:
        if self._ws.state is not State.OPEN:
            return
        self._ws.send_binary(_FRAME)
        self._sent += 1
        if self._sent < self._load.frames:
            # Real-time pacing: frame k leaves when its last sample would have been spoken.
            self._loop.call_at(self._started + self._sent * FRAME_S, self._send_frame)
        else:
            end = {"type": "CloseStream"} if self._load.protocol == "direct" else {"action": "stop"}
            self._ws.send_text(json.dumps(end).encode())
            if self._load.result.first_end_ns is None:
                self._load.result.first_end_ns = time.monotonic_ns()
        self._flush()


@dataclass
class _Load:
    url: str
    protocol: Protocol
    frames: int
    api_key: str
    result: LoadResult
    on_all_open: Callable[[], None]
    opened: int = 0
    timed_out: bool = False  # streams cut at the timeout are counted once, not again as drops

    def stream_opened(self) -> None:
        self.opened += 1
        if self.opened == self.result.streams:
            self.on_all_open()


async def run_load(
    url: str,
    streams: int,
    seconds: float,
    *,
    protocol: Protocol,
    api_key: str = "",
    on_all_open: Callable[[], None] = lambda: None,
    stagger_s: float = 1.0,
    timeout_s: float = 60.0,
) -> LoadResult:
    """Run `streams` concurrent real-time streams of `seconds` of audio against `url`.

    Starts are spread over `stagger_s` (real clients are not in lockstep). Streams that
    fail (refused, dropped, not closed with 1000, still open `timeout_s` after their
    audio ended) are listed in `failures`; their transcripts still count.
    """
    loop = asyncio.get_running_loop()
    wsuri = parse_uri(url)
    load = _Load(url, protocol, max(1, round(seconds / FRAME_S)), api_key, LoadResult(streams), on_all_open)

    transports: list[asyncio.Transport] = []

    async def one(delay: float) -> None:
        await asyncio.sleep(delay)
        connecting = time.monotonic_ns()
        try:
            transport, stream = await loop.create_connection(lambda: _Stream(load, connecting), wsuri.host, wsuri.port)
        except OSError as exc:
            load.result.failures.append(f"connect: {exc}")
            return
        transports.append(transport)
        await stream.done

    tasks = [asyncio.ensure_future(one(random.random() * stagger_s)) for _ in range(streams)]
    _, pending = await asyncio.wait(tasks, timeout=stagger_s + seconds + timeout_s)
    if pending:
        load.result.failures.extend(["still open after the timeout"] * len(pending))
        load.timed_out = True
        for task in pending:
            task.cancel()
        for transport in transports:
            transport.abort()
        await asyncio.wait(pending)
    return load.result
