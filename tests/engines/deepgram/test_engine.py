"""The deepgram engine, through the real deepgram-sdk, against a scriptable fake and against voxrelay's /v1/listen.

Clients speak /stt-stream to a gateway running `--engine deepgram`; the upstream is either
`voxrelay.testing.fake_deepgram` (fast, scripted faults) or a second voxrelay serving
`/v1/listen` with the local engine (real transcripts). Every test scans what its clients
received and what the process logged: the API key must never appear.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
import websockets

from tests.support import ServerThread, clip, encode_container, wer
from voxrelay.client import stream_audio
from voxrelay.engines.base import (
    EngineError,
    EngineFailure,
    StreamConfig,
)
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.gateway.app import create_app
from voxrelay.settings import Settings
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

API_KEY = f"dg-test-{uuid.uuid4().hex}"
LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}
ONE_SECOND = b"\x10\x00\xf0\xff" * 8000  # 1 s of 16 kHz linear16 (the fake does not listen to it)

SCRIPTS = {
    "slow": Script(interim_every_s=0, reply_delay_s=0.8),
    "never-closes": Script(interim_every_s=0, ignore_close_stream=True),
    "idle-sensitive": Script(interim_every_s=0, idle_timeout_s=0.6),
    "net0001": Script(
        fault="close",
        fault_after_bytes=8000,
        close_reason="NET-0001: did not receive audio data or a text message within the timeout window",
    ),
    "net0000": Script(fault="close", fault_after_bytes=8000),
    "data0000": Script(
        fault="close",
        fault_after_bytes=8000,
        close_code=1008,
        close_reason="DATA-0000: the payload cannot be decoded as audio",
    ),
    "drop": Script(fault="drop", fault_after_bytes=8000),
    "malformed": Script(fault="malformed", fault_after_bytes=8000),
    "stalls": Script(interim_every_s=0, stall_after_bytes=64000),
}


def engine_with_key(key: str, **kwargs: Any) -> DeepgramEngine:
    """The key is read from the environment at construction, as in `voxrelay serve`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPGRAM_API_KEY", key)
        return DeepgramEngine(DeepgramSettings(**kwargs))


@pytest_asyncio.fixture(scope="module")
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with FakeDeepgram(api_key=API_KEY, scripts=SCRIPTS) as server:
        yield server


@pytest_asyncio.fixture(scope="module")
async def gateway(fake: FakeDeepgram) -> AsyncIterator[ServerThread]:
    # No reconnects here: these tests check the error each fault gives (tests/engines/test_deepgram_reconnect.py
    # checks that retryable faults are survived).
    engine = engine_with_key(API_KEY, url=fake.url, keepalive_s=0.2, close_timeout_s=1.5, max_reconnects=0)
    server = ServerThread(Settings(port=0, max_sessions=8), engine).start()
    assert server.gateway.ready, server.gateway.start_error
    yield server
    await asyncio.to_thread(server.stop)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything the process logs, down to DEBUG (websockets logs handshake headers there)."""
    caplog.set_level(logging.DEBUG)
    for name in ("uvicorn", "uvicorn.error", "websockets", "deepgram", "voxrelay"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert records, "the process logged nothing: the scan would prove nothing"
    leaked = [r.getMessage() for r in records if API_KEY in r.getMessage()]
    assert not leaked


class SttClient:
    """A /stt-stream client for scripted flows: send frames, wait for messages."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._changed = asyncio.Condition()
        self._t0 = time.perf_counter()

    async def __aenter__(self) -> SttClient:
        self.ws = await websockets.connect(self.url, max_size=None)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()
        await self._reader

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                async with self._changed:
                    self.messages.append(message)
                    self.times.append(time.perf_counter() - self._t0)
                    self._changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        async with self._changed:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason or ""
            self._changed.notify_all()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def send_audio(self, audio: bytes, chunk: int = 1600) -> None:
        for offset in range(0, len(audio), chunk):
            await self.ws.send(audio[offset : offset + chunk])

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: any(predicate(m) for m in self.messages)), timeout)
            return next(m for m in self.messages if predicate(m))

    async def wait_closed(self, timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.close_code is not None), timeout)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    def first(self, kind: str) -> int:
        return next(i for i, m in enumerate(self.messages) if m["type"] == kind)


def is_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind


async def healthy_session(gateway: ServerThread, audio: bytes = ONE_SECOND) -> SttClient:
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16})
        await client.send_audio(audio)
        await client.send({"action": "stop"})
        await client.wait_closed()
    return client


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll state owned by the server thread until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def assert_no_key(*things: Any) -> None:
    for thing in things:
        assert API_KEY not in json.dumps(thing, default=str)


# Start-up.


def test_missing_key_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(EngineFailure, match="DEEPGRAM_API_KEY"):
        create_app(Settings(port=0, engine="deepgram"))
    env = {k: v for k, v in os.environ.items() if k != "DEEPGRAM_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "voxrelay.cli", "serve", "--engine", "deepgram", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "DEEPGRAM_API_KEY" in done.stderr


def test_engine_repr_hides_the_key() -> None:
    engine = engine_with_key(API_KEY, url="ws://127.0.0.1:9")
    assert API_KEY not in repr(engine) and API_KEY not in str(engine)
    assert engine.model_name == "nova-3" and engine.capabilities.raw_audio


# The happy path against the fake: options out, events back.


async def test_configure_maps_to_deepgram_options_and_events_come_back(
    gateway: ServerThread, fake: FakeDeepgram, logs: pytest.LogCaptureFixture
) -> None:
    before = len(fake.connections)
    async with SttClient(gateway.url()) as client:
        await client.send(
            {
                "action": "configure",
                "audio_format": LINEAR16,
                "language": "en",
                "endpointing": 500,
                "utterance_end_ms": 1000,
                "vad_events": True,
                "smart_format": True,
                "keyterms": ["voxrelay", "Deepgram"],
            }
        )
        await client.send_audio(ONE_SECOND)
        await client.send({"action": "stop"})
        await client.wait_closed()
    upstream = fake.connections[before]
    assert upstream.authorized
    assert upstream.extensions is None  # no permessage-deflate offered: it costs CPU, audio barely shrinks
    assert upstream.params == {
        "model": ["nova-3"],
        "encoding": ["linear16"],
        "sample_rate": ["16000"],
        "channels": ["1"],
        "interim_results": ["true"],
        "endpointing": ["500"],
        "vad_events": ["true"],
        "punctuate": ["true"],
        "smart_format": ["true"],
        "language": ["en"],
        "utterance_end_ms": ["1000"],
        "keyterm": ["voxrelay", "Deepgram"],
    }
    assert upstream.audio_bytes == len(ONE_SECOND)
    assert upstream.messages[-2:] == ["Finalize", "CloseStream"]  # stop = Finalize + CloseStream
    kinds = [m["type"] for m in client.messages]
    assert kinds[0] == "ready" and kinds[-1] == "stopped"
    assert client.first("speech_started") < client.first("interim_transcript") < client.first("final_transcript")
    assert client.first("final_transcript") < client.first("utterance_end")
    assert [m["transcript"] for m in client.of_type("final_transcript")] == [Script().transcript]
    assert client.close_code == 1000
    assert_no_key(client.messages, client.close_reason)


async def test_webm_goes_upstream_untouched_without_encoding(
    gateway: ServerThread, fake: FakeDeepgram, logs: pytest.LogCaptureFixture
) -> None:
    webm = encode_container(clip("s01_command_lights.wav").pcm(), 16000, "webm")
    before = len(fake.connections)
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": {"encoding": "webm"}})
        await client.send_audio(webm, chunk=1000)
        await client.send({"action": "stop"})
        await client.wait_closed()
    upstream = fake.connections[before]
    assert not {"encoding", "sample_rate", "channels"} & set(upstream.params)
    assert upstream.audio_bytes == len(webm)
    assert client.of_type("final_transcript") and client.close_code == 1000


async def test_finalize_is_forwarded_and_the_session_goes_on(
    gateway: ServerThread, fake: FakeDeepgram, logs: pytest.LogCaptureFixture
) -> None:
    before = len(fake.connections)
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16, "interim_results": False})
        await client.send_audio(ONE_SECOND)
        await client.send({"action": "finalize"})
        await client.wait_for(is_type("final_transcript"))
        assert fake.connections[before].finalizes == 1
        await client.send_audio(ONE_SECOND)
        await client.send({"action": "stop"})
        await client.wait_closed()
    assert len(client.of_type("final_transcript")) == 2
    assert client.messages[-1]["type"] == "stopped"


# Stop: the last words are never lost; a silent client is kept alive.


async def test_stop_waits_for_a_slow_final(gateway: ServerThread, logs: pytest.LogCaptureFixture) -> None:
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16, "model": "slow"})
        await client.send_audio(ONE_SECOND)
        stop_at = time.perf_counter() - client._t0
        await client.send({"action": "stop"})
        await client.wait_closed()
    kinds = [m["type"] for m in client.messages]
    assert kinds[-2:] == ["final_transcript", "stopped"], kinds
    assert client.messages[-2]["transcript"] == Script().transcript
    assert client.times[-2] - stop_at >= 0.75  # it came 0.8 s late and was still relayed
    assert client.close_code == 1000


async def test_a_deepgram_that_never_closes_is_given_up_on(
    gateway: ServerThread, logs: pytest.LogCaptureFixture
) -> None:
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16, "model": "never-closes"})
        await client.send_audio(ONE_SECOND)
        await client.send({"action": "stop"})
        await client.wait_closed(timeout=5)
    kinds = [m["type"] for m in client.messages]
    assert kinds[-3:] == ["final_transcript", "error", "stopped"], kinds  # the Finalize answer still arrives
    assert "did not close the stream within 1.5 s" in client.messages[-2]["message"]


async def test_keepalive_holds_a_silent_session(
    gateway: ServerThread, fake: FakeDeepgram, logs: pytest.LogCaptureFixture
) -> None:
    before = len(fake.connections)
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16, "model": "idle-sensitive"})
        await client.send_audio(ONE_SECOND)
        # The client says nothing until the fake got 8 KeepAlives (one per 0.2 s): 1.6 s of silence,
        # 2.5x the upstream's idle timeout, which would have closed the stream without them.
        async with asyncio.timeout(10):
            while len(fake.connections) <= before or fake.connections[before].keepalives < 8:  # noqa: ASYNC110
                await asyncio.sleep(0.02)  # polls the fake's counter (same event loop)
        await client.send_audio(ONE_SECOND)
        await client.send({"action": "stop"})
        await client.wait_closed()
    assert not client.of_type("error"), client.messages
    assert client.of_type("final_transcript") and client.close_code == 1000
    assert fake.connections[before].keepalives >= 8 and fake.open_connections == 0
    assert len(fake.connections) == before + 1  # held, not reconnected after an idle close


_HOOK_LIFETIME = """
import asyncio, os
from deepgram.listen.v1 import client as listen_client
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
os.environ["DEEPGRAM_API_KEY"] = "k"

async def main():
    default = listen_client.websockets_client_connect
    settings = DeepgramSettings(url="ws://127.0.0.1:9")
    first, second = DeepgramEngine(settings), DeepgramEngine(settings)
    await first.start()
    await second.start()
    assert listen_client.websockets_client_connect is not default
    await first.stop()
    assert listen_client.websockets_client_connect is not default, "the second engine still runs"
    await second.stop()
    assert listen_client.websockets_client_connect is default

asyncio.run(main())
"""


def test_the_sdk_transport_hook_is_undone_when_the_last_engine_stops() -> None:
    """voxrelay's transport is plugged into the SDK process-wide while an engine runs, not after (fresh process)."""
    done = subprocess.run([sys.executable, "-c", _HOOK_LIFETIME], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


async def test_the_sdk_builds_a_connection_target_once_per_options(fake: FakeDeepgram) -> None:
    """URL and headers come from the SDK the first time a set of options is seen; later streams reuse them."""
    engine = engine_with_key(API_KEY, url=fake.url)
    await engine.start()
    try:
        options = {"model": "nova-3", "interim_results": True, "keyterm": ["voxrelay"]}
        target = await engine.upstream_target(options)
        url, headers = target
        assert url.startswith(f"{fake.url}/v1/listen?") and "keyterm=voxrelay" in url and "interim_results=true" in url
        assert headers["Authorization"] == f"Token {API_KEY}"
        assert await engine.upstream_target(dict(reversed(options.items()))) is target  # kept, whatever the order
        other = await engine.upstream_target({**options, "keyterm": ["other"]})
        assert "keyterm=other" in other[0] and other is not target
        stream = await engine.open(StreamConfig(encoding="linear16", model="nova-3"))
        await stream.send_audio(ONE_SECOND)
        await stream.close()
        assert [event async for event in stream.events()]  # a stream on a cached target works end to end
    finally:
        await engine.stop()


async def test_a_stalled_upstream_fails_the_stream_in_time(fake: FakeDeepgram) -> None:
    """An upstream that stops reading blocks the sends (TCP backpressure): the watchdog fails the stream."""
    engine = engine_with_key(API_KEY, url=fake.url, send_timeout_s=0.5, keepalive_s=0.2, max_reconnects=0)
    await engine.start()
    try:
        stream = await engine.open(StreamConfig(encoding="linear16", model="stalls"))
        chunk = b"\x00\x01" * (1 << 19)  # 1 MiB: loopback's socket buffers hold several
        for _ in range(48):
            await stream.send_audio(chunk)
        started = time.monotonic()
        async for event in stream.events():
            if isinstance(event, EngineError):
                break  # the gateway ends the session here: its client hears at once
        assert time.monotonic() - started < 10
        assert "stopped accepting data for 0.5 s" in event.message and API_KEY not in event.message, event
        assert event.fatal
        await stream.abort()
    finally:
        await engine.stop()
    assert engine.active_streams == 0


# Faults: a clear error for the session that hit it, and the gateway keeps serving the others.


@pytest.mark.parametrize(
    ("model", "code", "close_code", "words"),
    [
        ("net0001", "engine_error", 1011, "NET-0001"),
        ("net0000", "engine_error", 1011, "NET-0000"),
        ("data0000", "unsupported_audio", 1003, "could not decode the audio"),
        ("drop", "engine_error", 1011, "dropped"),
        ("malformed", "engine_error", 1011, "not valid JSON"),
    ],
)
async def test_upstream_fault_gives_a_clear_error_and_others_go_on(
    gateway: ServerThread,
    fake: FakeDeepgram,
    logs: pytest.LogCaptureFixture,
    model: str,
    code: str,
    close_code: int,
    words: str,
) -> None:
    async def faulty() -> SttClient:
        async with SttClient(gateway.url()) as client:
            await client.send({"action": "configure", "audio_format": LINEAR16, "model": model})
            await client.send_audio(ONE_SECOND * 2)
            await client.wait_closed()
        return client

    bad, good = await asyncio.gather(faulty(), healthy_session(gateway, ONE_SECOND * 2))
    error = bad.of_type("error")
    assert len(error) == 1 and error[0]["code"] == code and words in error[0]["message"], bad.messages
    assert bad.close_code == close_code and not bad.of_type("stopped")
    assert good.of_type("final_transcript") and good.messages[-1]["type"] == "stopped"
    assert_no_key(bad.messages, good.messages, bad.close_reason)
    await fake.wait_all_closed()
    await eventually(lambda: gateway.gateway.engine.active_streams == 0 and not gateway.gateway.sessions)


async def test_rejected_key_gives_a_clear_error(fake: FakeDeepgram, logs: pytest.LogCaptureFixture) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    server = ServerThread(Settings(port=0), engine_with_key(wrong, url=fake.url)).start()
    try:
        result = await stream_audio(server.url(), ONE_SECOND, configure={"audio_format": LINEAR16}, speed=0)
    finally:
        await asyncio.to_thread(server.stop)
    [error] = result.of_type("error")
    assert error["code"] == "engine_unavailable"
    assert "401" in error["message"] and "DEEPGRAM_API_KEY" in error["message"]
    assert result.close_code == 1011
    assert wrong not in json.dumps(result.messages) and wrong not in logs.text
    assert_no_key(result.messages)


async def test_unreachable_upstream_gives_a_clear_error(logs: pytest.LogCaptureFixture) -> None:
    server = ServerThread(Settings(port=0), engine_with_key(API_KEY, url="ws://127.0.0.1:9")).start()
    try:
        result = await stream_audio(server.url(), ONE_SECOND, configure={"audio_format": LINEAR16}, speed=0)
    finally:
        await asyncio.to_thread(server.stop)
    [error] = result.of_type("error")
    assert error["code"] == "engine_unavailable" and "cannot reach Deepgram" in error["message"]
    assert_no_key(result.messages)


@pytest.mark.parametrize("how", ["close", "drop"])
async def test_a_client_that_leaves_gets_its_upstream_closed(
    gateway: ServerThread, fake: FakeDeepgram, logs: pytest.LogCaptureFixture, how: str
) -> None:
    before = len(fake.connections)
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16})
        await client.send_audio(ONE_SECOND)
        await client.wait_for(is_type("interim_transcript"))
        assert fake.connections[before].closed is False
        if how == "drop":
            client.ws.transport.abort()
    await fake.wait_all_closed()
    assert fake.connections[before].close_streams == 0  # released at once, not flushed
    await eventually(lambda: gateway.gateway.engine.active_streams == 0 and not gateway.gateway.sessions)


# End to end: --engine deepgram in front of a second voxrelay serving /v1/listen with the local engine.


@pytest.fixture
def chained(local_engine_server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    """`voxrelay serve --engine deepgram` set up by environment, in front of a /v1/listen that requires the key."""
    monkeypatch.setattr(local_engine_server.gateway.settings, "listen_api_keys", API_KEY)
    monkeypatch.setenv("DEEPGRAM_API_KEY", API_KEY)
    monkeypatch.setenv("VOXRELAY_ENGINE", "deepgram")
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_URL", f"ws://127.0.0.1:{local_engine_server.port}")
    server = ServerThread(Settings(port=0)).start()
    assert server.gateway.engine.name == "deepgram"
    yield server
    server.stop()


@pytest.mark.parametrize("fmt", ["linear16", "webm"])
async def test_stt_stream_through_the_sdk_to_voxrelay_listen(
    chained: ServerThread, logs: pytest.LogCaptureFixture, fmt: str
) -> None:
    c = clip("s12_pause_shopping.wav" if fmt == "linear16" else "s03_question_weather.wav")
    if fmt == "linear16":
        result = await stream_audio(chained.url(), c.linear16(), configure={"audio_format": LINEAR16})
    else:
        data = encode_container(c.pcm(), 16000, "webm")
        rate = max(1, int(len(data) / c.duration))
        result = await stream_audio(
            chained.url(),
            data,
            configure={"audio_format": {"encoding": "webm"}},
            bytes_per_second=rate,
            chunk_bytes=rate // 4,
        )
    assert not result.of_type("error"), result.messages
    # tiny.en int8 on an AMD EPYC hears "Add milk ... bread" as "and note ... red" on this clip on the direct
    # /stt-stream path too (3 of 14 words), so the bound leaves room for the model and no more: a chain that lost
    # or repeated a word fails it (4 of 14 > 0.25).
    assert wer([c.reference], [result.transcript]) <= 0.25, result.transcript
    kinds = [m["type"] for m in result.messages]
    assert kinds[0] == "ready" and kinds[-1] == "stopped" and result.close_code == 1000
    assert "interim_transcript" in kinds and kinds.index("interim_transcript") < kinds.index("final_transcript")
    assert "speech_started" in kinds
    assert any(m["speech_final"] for m in result.of_type("final_transcript"))
    assert_no_key(result.messages, result.close_reason)


async def test_dictation_is_passed_on_for_deepgram_to_convert(gateway: ServerThread, fake: FakeDeepgram) -> None:
    before = len(fake.connections)
    async with SttClient(gateway.url()) as client:
        await client.send({"action": "configure", "audio_format": LINEAR16, "dictation": True})
        await client.send_audio(ONE_SECOND)
        await client.send({"action": "stop"})
        await client.wait_closed()
    upstream = fake.connections[before]
    assert upstream.params["dictation"] == ["true"] and upstream.params["punctuate"] == ["true"]
    # Deepgram converts; the text comes back as Deepgram wrote it, untouched here.
    assert [m["transcript"] for m in client.of_type("final_transcript")] == [Script().transcript]
