"""voxrelay's own Python per relayed message on the Deepgram proxy path, in-process, without sockets (issue 17).

    PYTHONPATH=src .venv/bin/python scripts/relay_micro.py [--frames 100000] [--results 50000] [--rounds 5]

`scripts/relay_cost.py` measures the whole gateway (uvicorn, websockets, the kernel) on the benchmark's
rig, where a few percent move with the machine's other load. This measures only what voxrelay adds
between the two sockets, for one session of each endpoint that relays through the Deepgram engine,
so a change of a fraction of a microsecond shows:

- audio: a binary frame from the client through the real read loop (`Connection._read`: limits,
  codec, the writer's turn, metrics, usage) and the audio path (`AudioPipeline`, `CountingStream`,
  `DeepgramStream`, `UpstreamSender`) to an upstream connection whose `send` does nothing;
- result: a Deepgram `Results` text frame through the stream's reader (`DeepgramStream._read_loop`:
  JSON, engine event) and the connection (codec, encoder, the writer's turn) to a client whose
  `send_text` does nothing. Every fifth is final; `/v1/listen` results carry 7 words (its streams
  ask for them), `/stt-stream` results none.

The client's, the upstream's and the loop's work is not in the figures (it is the stack's: see
`relay_cost.py --stack floor`). CPU time (`time.process_time`) per message, the best of `--rounds`;
run it under `flock -x /tmp/voxrelay-bench.lock` and compare trees by `PYTHONPATH`, interleaved.
The harness reaches into the connection's and the stream's private attributes to wire them
without an engine handshake; it tracks those names.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("DEEPGRAM_API_KEY", "relay-micro")
os.environ.setdefault("VOXRELAY_DATA_DIR", tempfile.mkdtemp(prefix="relay-micro-"))

import uvloop
from starlette.websockets import WebSocketState

from voxrelay.engines.base import StreamConfig
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.engines.deepgram.stream import DeepgramStream
from voxrelay.gateway.connection import Connection
from voxrelay.gateway.pipeline import AudioPipeline
from voxrelay.gateway.state import Gateway
from voxrelay.ops.metrics import CountingStream
from voxrelay.protocol.deepgram_live import ListenSession
from voxrelay.protocol.deepgram_messages import ModelInfo
from voxrelay.protocol.deepgram_params import parse_params
from voxrelay.protocol.stt_stream import Session, SttStreamCodec
from voxrelay.security.admission import Admission
from voxrelay.settings import Settings
from voxrelay.usage.session import SessionUsage

FRAME = bytes(3200)  # 100 ms of 16 kHz linear16, the benchmark's frame
_WORDS = ["hello", "there", "how", "are", "you", "doing", "today"]


def _results(final: bool, words: bool) -> str:
    listed = [
        {"word": w, "start": 2.5 + 0.1 * i, "end": 2.6 + 0.1 * i, "confidence": 0.97, "punctuated_word": w.title()}
        for i, w in enumerate(_WORDS)
    ] if words else []
    alternative = {"transcript": " ".join(_WORDS), "confidence": 0.98, "words": listed}
    return json.dumps({
        "type": "Results", "channel_index": [0, 1], "duration": 1.0, "start": 2.5, "is_final": final,
        "speech_final": False, "channel": {"alternatives": [alternative]},
        "metadata": {"request_id": "abc", "model_info": {"name": "nova-3", "version": "x", "arch": "y"},
                     "model_uuid": "u"},
        "from_finalize": False,
    })


class _Upstream:
    async def send(self, data: str | bytes) -> None:
        pass


class _Client:
    """What the connection uses of starlette's WebSocket: `frames` audio frames, then a disconnect."""

    application_state = WebSocketState.CONNECTED

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.sent = 0

    async def receive(self) -> dict[str, Any]:
        self.frames -= 1
        if self.frames < 0:
            return {"type": "websocket.disconnect", "code": 1000}
        if self.frames % 64 == 0:
            await asyncio.sleep(0)  # as a socket would, now and then
        return {"type": "websocket.receive", "bytes": FRAME}

    async def send_text(self, text: str) -> None:
        self.sent += 1


class _Messages:
    """The upstream's messages, as websockets' connection yields them."""

    def __init__(self, count: int, words: bool) -> None:
        self.count = count
        self.interim, self.final = _results(False, words), _results(True, words)

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> str:
        self.count -= 1
        if self.count < 0:
            raise StopAsyncIteration
        return self.final if self.count % 5 == 0 else self.interim


def _session(gateway: Gateway, frames: int, listen: bool) -> tuple[Connection, DeepgramStream, _Client]:
    """A connection whose engine stream is open on a do-nothing upstream, as `_open_engine` leaves it."""
    engine = gateway.engine
    assert isinstance(engine, DeepgramEngine)
    client = _Client(frames)
    codec: Any
    if listen:
        params = parse_params([("encoding", "linear16"), ("sample_rate", "16000"), ("interim_results", "true")])
        codec = ListenSession("r", params, ModelInfo(engine.model_name, "0", engine.name), "2026-12-03T00:00:00Z")
        codec.receive_audio(FRAME)
    else:
        codec = SttStreamCodec(Session("s", engine.name))
        configure = {"action": "configure", "audio_format": {"encoding": "linear16", "sample_rate": 16000}}
        codec.receive_text(json.dumps(configure))
    opened = codec.actions()[0]
    admission = Admission(owner=None, subprotocol=None, trusted=True, batch=False, rate_limited=False)
    stats = gateway.metrics.session("v1-listen" if listen else "stt-stream")
    connection = Connection(client, gateway, codec, stats, session_id="s",  # type: ignore[arg-type]
                            admission=admission, idle_timeout_s=30)
    stream = DeepgramStream(engine, {}, StreamConfig(encoding="linear16", sample_rate=16000, word_timings=listen))
    stream._sender._ws = _Upstream()  # type: ignore[assignment]
    stream._sender.start_connection()
    rate = opened.audio_format.bytes_per_second
    connection._usage = SessionUsage(gateway.usage, "s", None, stats.endpoint, engine)
    connection._counter = CountingStream(stream, 0, rate)
    connection.pipeline = AudioPipeline(connection._counter, opened.audio_format, engine, on_error=lambda _: None)
    connection.limiter.declare(rate)
    codec.engine_opened()
    connection._counter.push_events(connection)
    codec.actions()
    return connection, stream, client


async def _measure(frames: int, results: int, rounds: int) -> dict[str, float]:
    gateway = Gateway(Settings(), DeepgramEngine(DeepgramSettings(url="ws://127.0.0.1:9")))
    gc.freeze()
    best: dict[str, float] = {}
    for _ in range(rounds):
        for listen in (False, True):
            name = "listen" if listen else "stt_stream"
            connection, _, client = _session(gateway, frames, listen)
            start = time.process_time()
            await connection._read()
            audio_us = 1e6 * (time.process_time() - start) / frames
            assert connection.codec.audio_bytes >= frames * len(FRAME), "the read loop stopped early"
            connection, stream, client = _session(gateway, 0, listen)
            errors: list[BaseException] = []
            start = time.process_time()
            await stream._read_loop(_Messages(results, words=listen), errors)  # type: ignore[arg-type]
            result_us = 1e6 * (time.process_time() - start) / results
            assert not errors and client.sent == results, (errors, client.sent)
            for key, value in ((f"{name}_audio_us", audio_us), (f"{name}_result_us", result_us)):
                best[key] = round(min(best.get(key, value), value), 3)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="audio frames per round and endpoint")
    parser.add_argument("--results", type=int, default=50_000, help="upstream results per round and endpoint")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--label", default="", help="a name for this tree in the output")
    args = parser.parse_args()
    figures = uvloop.run(_measure(args.frames, args.results, args.rounds))
    print(json.dumps({"label": args.label, **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
