"""`/v1/listen`, Deepgram's Live API served by voxrelay, driven by the real deepgram-sdk (and a raw socket where
the SDK cannot say what a browser would)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import websockets
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.core.events import EventType

from tests.support import ServerThread, clip, encode_container, silence, wer
from voxrelay.client import stream_audio, to_linear16
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.gateway.listen_v1 import RedactCredentials
from voxrelay.settings import Settings
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


def sdk(server: ServerThread | str, api_key: str = "any-key") -> AsyncDeepgramClient:
    """The official SDK pointed at a local server instead of Deepgram's cloud."""
    base = server if isinstance(server, str) else f"127.0.0.1:{server.port}"
    env = DeepgramClientEnvironment(
        base=f"http://{base}", production=f"ws://{base}", agent=f"ws://{base}", agent_rest=f"http://{base}"
    )
    return AsyncDeepgramClient(api_key=api_key, environment=env)


@dataclass
class SdkRun:
    """What one SDK connection saw: messages (SDK objects) with arrival times, errors, the close."""

    messages: list[Any] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    close_code: int | None = None
    close_reason: str = ""
    started: float = field(default_factory=time.perf_counter)

    def of_type(self, kind: str) -> list[Any]:
        return [m for m in self.messages if getattr(m, "type", None) == kind]

    @property
    def finals(self) -> list[Any]:
        return [m for m in self.of_type("Results") if m.is_final]

    @property
    def transcript(self) -> str:
        return " ".join(m.channel.alternatives[0].transcript for m in self.finals).strip()

    def index(self, predicate: Callable[[Any], bool]) -> int:
        return next(i for i, m in enumerate(self.messages) if predicate(m))


async def sdk_stream(
    server: ServerThread,
    audio: bytes,
    options: dict[str, Any],
    *,
    chunk: int = 3200,
    bytes_per_second: float = 32000,
    speed: float = 1.0,
    after_audio: Callable[[Any, SdkRun], Awaitable[None]] | None = None,
    api_key: str = "any-key",
) -> SdkRun:
    """Stream `audio` through the SDK at `speed` x real time, then CloseStream; collect until the server closes."""
    run = SdkRun()
    async with sdk(server, api_key).listen.v1.connect(**options) as conn:

        def on_message(message: Any) -> None:
            run.messages.append(message)
            run.times.append(time.perf_counter() - run.started)

        conn.on(EventType.MESSAGE, on_message)
        conn.on(EventType.ERROR, run.errors.append)
        reader = asyncio.create_task(conn.start_listening())
        run.started = time.perf_counter()
        for offset in range(0, len(audio), chunk):
            await conn.send_media(audio[offset : offset + chunk])
            if speed > 0:
                delay = (offset + chunk) / bytes_per_second / speed - (time.perf_counter() - run.started)
                if delay > 0:
                    await asyncio.sleep(delay)  # pacing real-time audio
        if after_audio is not None:
            await after_audio(conn, run)
        await conn.send_close_stream()
        await asyncio.wait_for(reader, 30)
        # The SDK has no public close code; its websocket has.
        run.close_code, run.close_reason = conn._websocket.close_code, conn._websocket.close_reason or ""
    return run


def check_words(result: Any) -> None:
    """Real word timings and confidences: inside the result's span, in order, confidences in (0, 1]."""
    alternative = result.channel.alternatives[0]
    assert alternative.words, "a final with text has words"
    assert 0 < alternative.confidence <= 1
    span_start, span_end = result.start, result.start + result.duration
    previous = 0.0
    for word in alternative.words:
        assert 0 < word.confidence <= 1
        assert word.start <= word.end and word.start >= previous - 0.01
        assert span_start - 0.1 <= word.start and word.end <= span_end + 0.1
        assert word.punctuated_word and word.word == word.word.lower()
        previous = word.start
    spoken = " ".join(w.punctuated_word for w in alternative.words)
    assert wer([alternative.transcript], [spoken]) <= 0.1


async def test_sdk_stream_matches_the_stt_stream_path(local_engine_server: ServerThread) -> None:
    c = clip("s03_question_weather.wav")
    audio = to_linear16(np.concatenate([c.pcm(), silence(1.5)]))
    options = dict(
        model="nova-3",
        encoding="linear16",
        sample_rate=16000,
        channels=1,
        interim_results=True,
        endpointing=300,
        utterance_end_ms=1000,
        vad_events=True,
        smart_format=True,
    )
    run, reference = await asyncio.gather(
        sdk_stream(local_engine_server, audio, options),
        stream_audio(local_engine_server.url(), audio, configure={"audio_format": LINEAR16}),
    )
    assert not run.errors and run.close_code == 1000
    stt_wer = wer([c.reference], [reference.transcript])
    listen_wer = wer([c.reference], [run.transcript])
    assert listen_wer <= 0.15 and listen_wer <= stt_wer + 0.05, (run.transcript, reference.transcript)

    kinds = [m.type for m in run.messages]
    first_final = run.index(lambda m: m.type == "Results" and m.is_final)
    assert kinds[0] == "SpeechStarted"
    assert any(m.type == "Results" and not m.is_final for m in run.messages[:first_final]), "interims come first"
    assert kinds[-1] == "Metadata"
    assert kinds.index("UtteranceEnd") > first_final
    assert any(m.speech_final for m in run.finals)

    # Results tile the audio, as Deepgram's do, and carry real words.
    cursor = 0.0
    for result in run.finals:
        assert abs(result.start - cursor) < 0.002
        cursor = result.start + result.duration
        assert result.channel_index == [0, 1] and result.from_finalize is False
        if result.channel.alternatives[0].transcript:
            check_words(result)
    last_word = [w for r in run.finals for w in r.channel.alternatives[0].words][-1]
    assert abs(run.of_type("UtteranceEnd")[0].last_word_end - last_word.end) < 0.01

    [metadata] = run.of_type("Metadata")
    request_ids = {m.metadata.request_id for m in run.of_type("Results")}
    assert request_ids == {metadata.request_id}
    assert abs(metadata.duration - len(audio) / 32000) < 0.05
    assert metadata.sha256 == hashlib.sha256(audio).hexdigest()
    assert metadata.channels == 1
    assert run.finals[0].metadata.model_info.name == local_engine_server.gateway.engine.model_name


async def test_finalize_answers_from_finalize(local_engine_server: ServerThread) -> None:
    c = clip("s01_command_lights.wav")
    finalized = asyncio.Event()

    async def finalize(conn: Any, run: SdkRun) -> None:
        assert not run.finals, "endpointing=false: nothing is final before Finalize"
        await conn.send_finalize()
        await asyncio.wait_for(finalized.wait(), 15)

    def watch(run: SdkRun) -> None:
        if any(m.from_finalize for m in run.finals):
            finalized.set()

    run = SdkRun()
    options = dict(model="nova-3", encoding="linear16", sample_rate=16000, endpointing=False, punctuate=True)
    async with sdk(local_engine_server).listen.v1.connect(**options) as conn:
        conn.on(EventType.MESSAGE, lambda m: (run.messages.append(m), watch(run)))
        conn.on(EventType.ERROR, run.errors.append)
        reader = asyncio.create_task(conn.start_listening())
        audio = c.linear16()
        for offset in range(0, len(audio), 3200):
            await conn.send_media(audio[offset : offset + 3200])
        await finalize(conn, run)
        await conn.send_close_stream()
        await asyncio.wait_for(reader, 30)
        close_code = conn._websocket.close_code
    [result] = [m for m in run.finals if m.channel.alternatives[0].transcript]
    assert result.from_finalize is True
    assert wer([c.reference], [result.channel.alternatives[0].transcript]) <= 0.2
    assert not run.errors and close_code == 1000 and run.messages[-1].type == "Metadata"


@pytest.mark.parametrize(("container", "encoding"), [("webm", None), ("ogg", "opus"), ("wav", None)])
async def test_containers_are_read_from_their_header(
    local_engine_server: ServerThread, container: str, encoding: str | None
) -> None:
    c = clip("s14_question_distance.wav")
    data = c.path.read_bytes() if container == "wav" else encode_container(c.pcm(), 16000, container)
    options: dict[str, Any] = dict(model="nova-3", punctuate=True)
    if encoding:
        options.update(encoding=encoding, sample_rate=48000)
    rate = len(data) / c.duration
    run = await sdk_stream(
        local_engine_server, data, options, chunk=max(1, int(rate / 10)), bytes_per_second=rate, speed=3
    )
    assert not run.errors and run.close_code == 1000
    assert wer([c.reference], [run.transcript]) <= 0.2, run.transcript
    [metadata] = run.of_type("Metadata")
    assert abs(metadata.duration - c.duration) < 0.1


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"this is text, not audio" * 10, "could not detect a container"),
        (b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40, "could not decode webm"),
    ],
)
async def test_undecodable_audio_closes_with_data_0000(
    local_engine_server: ServerThread, data: bytes, why: str
) -> None:
    run = SdkRun()
    async with sdk(local_engine_server).listen.v1.connect(model="nova-3") as conn:
        conn.on(EventType.MESSAGE, run.messages.append)
        conn.on(EventType.ERROR, run.errors.append)
        reader = asyncio.create_task(conn.start_listening())
        await conn.send_media(data)
        await asyncio.wait_for(reader, 15)
    [error] = run.of_type("Error")
    assert error.variant == "DataError" and why in error.description
    [closed] = run.errors
    assert isinstance(closed, websockets.ConnectionClosed)
    assert closed.rcvd is not None and closed.rcvd.code == 1008 and closed.rcvd.reason.startswith("DATA-0000")


async def test_keepalive_holds_the_stream_and_silence_closes_it(
    local_engine_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_engine_server.gateway.settings, "listen_idle_timeout_s", 0.6)
    errors: list[BaseException] = []
    idle_closes: list[logging.LogRecord] = []  # the server's own record of the idle close
    handler = logging.Handler()
    handler.emit = lambda record: idle_closes.append(record) if "no audio or message" in record.getMessage() else None
    listen_log = logging.getLogger("voxrelay.listen")
    listen_log.addHandler(handler)
    level = listen_log.level
    listen_log.setLevel(logging.INFO)
    async with sdk(local_engine_server).listen.v1.connect(
        model="nova-3", encoding="linear16", sample_rate=16000
    ) as conn:
        conn.on(EventType.ERROR, errors.append)
        reader = asyncio.create_task(conn.start_listening())
        try:
            for _ in range(8):  # 1.6 s of KeepAlive only: well past the 0.6 s window
                await conn.send_keep_alive()
                last_keepalive = time.time()
                await asyncio.sleep(0.2)  # the stimulus (time passing with KeepAlives), not a synchronisation
            assert not idle_closes and not reader.done(), "KeepAlive holds the stream open"
            await asyncio.wait_for(reader, 5)  # the server closes the silent stream
        finally:
            listen_log.removeHandler(handler)
            listen_log.setLevel(level)
    # The server logged the idle close, and not before the window after the last KeepAlive it got.
    [record] = idle_closes
    assert record.created - last_keepalive >= 0.6 - 0.01, record.created - last_keepalive
    [closed] = errors
    assert isinstance(closed, websockets.ConnectionClosed) and closed.rcvd is not None
    assert closed.rcvd.code == 1011 and closed.rcvd.reason.startswith("NET-0001")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (dict(encoding="mulaw", sample_rate=8000), "mulaw"),
        (dict(encoding="linear16"), "sample_rate"),
        (dict(diarize=True), "diarization"),
        (dict(redact="pci"), "redaction"),
        (dict(endpointing="soon"), "endpointing"),
        (dict(encoding="linear16", sample_rate=16000, channels=3), "channels"),
    ],
)
async def test_bad_parameters_are_refused_before_the_upgrade(
    local_engine_server: ServerThread, options: dict[str, Any], words: str
) -> None:
    with pytest.raises(ApiError) as refused:
        async with sdk(local_engine_server).listen.v1.connect(model="nova-3", **options):
            pass
    assert refused.value.status_code == 400
    query = "&".join(f"{k}={str(v).lower()}" for k, v in options.items())
    with pytest.raises(websockets.InvalidStatus) as raw:
        await websockets.connect(local_engine_server.url(f"/v1/listen?{query}"))
    response = raw.value.response
    body = json.loads(response.body)
    assert response.status_code == 400 and body["err_code"] == "Bad Request" and words in body["err_msg"]
    assert words in response.headers["dg-error"] and body["request_id"] == response.headers["dg-request-id"]


@pytest.fixture
def with_keys(local_engine_server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    monkeypatch.setattr(local_engine_server.gateway.settings, "listen_api_keys", "key-one, key-two")
    yield local_engine_server


async def test_auth_by_token_header_or_browser_subprotocol(
    with_keys: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("", "uvicorn.error", "websockets"):  # websockets logs handshake headers at DEBUG
        caplog.set_level(logging.DEBUG, logger=name or None)
    run = await sdk_stream(
        with_keys, b"", dict(model="nova-3", encoding="linear16", sample_rate=16000), api_key="key-two"
    )
    assert run.close_code == 1000 and [m.type for m in run.messages] == ["Metadata"]

    with pytest.raises(ApiError) as refused:
        async with sdk(with_keys, "wrong-key").listen.v1.connect(model="nova-3"):
            pass
    assert refused.value.status_code == 401 and "wrong-key" not in str(refused.value)

    url = with_keys.url("/v1/listen?encoding=linear16&sample_rate=16000")
    async with websockets.connect(url, subprotocols=["token", "key-one"]) as ws:  # what browsers can send
        assert ws.subprotocol == "token"
        await ws.send(json.dumps({"type": "CloseStream"}))
        assert json.loads(await ws.recv())["type"] == "Metadata"
    with pytest.raises(websockets.InvalidStatus) as raw:
        await websockets.connect(url)
    assert raw.value.response.status_code == 401
    logged = [r.getMessage() for r in caplog.records]
    assert any("authorization" in line.lower() for line in logged), "the handshake was logged"
    assert not [line for line in logged if "key-one" in line or "key-two" in line]


async def test_control_messages_and_unsupported_parameters(local_engine_server: ServerThread) -> None:
    url = local_engine_server.url("/v1/listen?encoding=linear16&sample_rate=16000&numerals=true&tag=demo")
    async with websockets.connect(url) as ws:
        assert ws.response.headers["dg-request-id"]
        await ws.send("hello")
        error = json.loads(await ws.recv())
        assert error["type"] == "Error" and error["variant"] == "SchemaError" and error["message"] == "hello"
        await ws.send(json.dumps({"type": "Configure", "keyterms": ["voxrelay"]}))
        assert json.loads(await ws.recv())["type"] == "ConfigureFailure"
        await ws.send(json.dumps({"type": "KeepAlive"}))
        await ws.send(json.dumps({"type": "Finalize"}))
        await ws.send(json.dumps({"type": "CloseStream"}))
        metadata = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedOK):
            await ws.recv()
    assert metadata["type"] == "Metadata" and metadata["duration"] == 0
    assert {w["parameter"] for w in metadata["warnings"]} == {"numerals", "tag"}
    assert ws.close_code == 1000


async def test_listen_in_front_of_the_deepgram_engine_is_a_key_holding_proxy() -> None:
    """/v1/listen on a gateway running the deepgram engine: SDK clients need no Deepgram key."""
    key = "upstream-only-key"
    async with FakeDeepgram(api_key=key, default=Script(final_every_s=0.5)) as fake:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DEEPGRAM_API_KEY", key)
            engine = DeepgramEngine(DeepgramSettings(url=fake.url))
        proxy = ServerThread(Settings(port=0), engine).start()
        try:
            run = await sdk_stream(
                proxy,
                b"\x00\x00" * 16000,
                dict(model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True),
                speed=0,
                api_key="client-key",
            )
        finally:
            await asyncio.to_thread(proxy.stop)
    assert not run.errors and run.close_code == 1000
    assert run.transcript.startswith(Script().transcript)
    assert all(m.channel.alternatives[0].words for m in run.finals if m.channel.alternatives[0].transcript)
    assert fake.connections[0].authorized and fake.connections[0].param("interim_results") == "true"
    assert key not in json.dumps([m.model_dump() for m in run.messages])


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("authorization", "Token key-one", "Token [redacted]"),
        ("Sec-WebSocket-Protocol", "token, key-one", "token [redacted]"),
        ("authorization", "key-one", "[redacted]"),
        ("host", "127.0.0.1:8765", "127.0.0.1:8765"),
    ],
)
def test_handshake_log_records_are_redacted(name: str, value: str, shown: str) -> None:
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, "< %s: %s", (name, value), None)
    assert RedactCredentials().filter(record)
    assert record.getMessage() == f"< {name}: {shown}"
