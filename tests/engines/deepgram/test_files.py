"""The deepgram engine's whole-file path (`transcribe_file`): the real deepgram-sdk's pre-recorded call.

Upstreams: a voxrelay gateway serving `POST /v1/listen` (Deepgram's pre-recorded API) with a fake
file engine whose segments name the byte ranges they cover (mapping and options, exactly), a
scripted stand-in answering errors (401, 400, 429, 500, silence), a closed port, and, chained, a
gateway whose local engine really transcribes: the real SDK -> voxrelay (deepgram engine) ->
voxrelay (local engine), judged against the local engine alone and by WER against the corpus.
Every test checks that the API key never reaches a message or a log.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import uvicorn
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from openai import AsyncOpenAI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes import FileCountingEngine
from tests.support import ServerThread, clip, normalize, wer
from voxrelay.audio.pcm import linear16_wav
from voxrelay.engines.base import EngineFailure
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.engines.files import FileRequest, FileSegment
from voxrelay.settings import Settings

API_KEY = f"dg-files-{uuid.uuid4().hex}"


def engine_with_key(key: str, **kwargs: Any) -> DeepgramEngine:
    """The key is read from the environment at construction, as in `voxrelay serve`."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPGRAM_API_KEY", key)
        return DeepgramEngine(DeepgramSettings(**kwargs))


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Everything logged down to DEBUG (the SDK and httpx log requests there): the key must not be in it."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "deepgram", "voxrelay", "uvicorn", "uvicorn.error"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog
    leaked = [r.getMessage() for r in caplog.get_records("call") if API_KEY in r.getMessage()]
    assert not leaked


async def collect(engine: DeepgramEngine, request: FileRequest) -> tuple[str, float, list[FileSegment]]:
    transcript = await engine.transcribe_file(request)
    return transcript.language, transcript.duration, [s async for s in transcript.segments]


# Against voxrelay's own POST /v1/listen, with a fake engine whose answers are known exactly.


@pytest.fixture(scope="module")
def upstream_engine() -> FileCountingEngine:
    return FileCountingEngine(chunk=16000)


@pytest.fixture(scope="module")
def voxrelay_upstream(upstream_engine: FileCountingEngine) -> Iterator[ServerThread]:
    server = ServerThread(Settings(port=0, listen_api_keys=API_KEY), upstream_engine).start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def engine(voxrelay_upstream: ServerThread) -> AsyncIterator[DeepgramEngine]:
    engine = engine_with_key(API_KEY, url=voxrelay_upstream.http(""), file_max_retries=0)
    await engine.start()
    yield engine
    await engine.stop()


def test_the_engine_declares_file_transcription() -> None:
    assert DeepgramEngine.capabilities.file_transcription and DeepgramEngine.capabilities.raw_audio


async def test_segments_words_and_duration_come_from_deepgrams_utterances(
    engine: DeepgramEngine, upstream_engine: FileCountingEngine, logs: pytest.LogCaptureFixture
) -> None:
    # The upstream gateway decodes every upload (so: a WAV), then its fake engine counts the bytes as sent.
    audio = linear16_wav((bytes(range(256)) * 250)[:-44], 16000, 1)  # 64000 bytes: four segments of 16000
    language, duration, segments = await collect(engine, FileRequest(audio, filename="a.wav", word_timings=True))
    assert duration == 2.0
    assert language == "en"  # asked to detect: the upstream's detected_language
    assert upstream_engine.requests[-1].language is None  # detect_language=true reached it as "detect"
    assert upstream_engine.requests[-1].audio == audio  # the bytes went through untouched
    ranges = [(a, a + 16000) for a in range(0, 64000, 16000)]
    assert [(s.id, s.start, s.end) for s in segments] == [(i, a / 32000, b / 32000) for i, (a, b) in enumerate(ranges)]
    # Asked with punctuate and smart_format: the punctuated text and words.
    assert [s.text for s in segments] == [f"Bytes {a}-{b}." for a, b in ranges]
    assert [[w.punctuated_word for w in s.words] for s in segments] == [["Bytes", f"{a}-{b}."] for a, b in ranges]
    assert [[w.word for w in s.words] for s in segments] == [["bytes", f"{a}-{b}"] for a, b in ranges]
    assert all(s.start <= s.words[0].start < s.words[1].end <= s.end for s in segments)


async def test_language_is_sent_and_words_are_dropped_when_not_asked(
    engine: DeepgramEngine, upstream_engine: FileCountingEngine
) -> None:
    audio = linear16_wav(bytes(19956), 16000, 1)  # 20000 bytes
    language, _, segments = await collect(engine, FileRequest(audio, language="de", prompt="Grüße"))
    assert language == "de" and upstream_engine.requests[-1].language == "de"
    assert [(s.text, s.words) for s in segments] == [("Bytes 0-16000.", ()), ("Bytes 16000-20000.", ())]
    # Deepgram has no prompt: it is not sent (keyterms would reach the upstream as its prompt).
    assert upstream_engine.requests[-1].prompt is None


async def test_an_undecodable_file_is_bad_audio(engine: DeepgramEngine) -> None:
    with pytest.raises(EngineFailure) as caught:
        await engine.transcribe_file(FileRequest(linear16_wav(b"FAIL" + bytes(3196), 16000, 1)))
    assert caught.value.code == "bad_audio" and "could not decode" in str(caught.value)


async def test_a_refused_key_is_engine_unavailable_and_the_key_is_nowhere(
    voxrelay_upstream: ServerThread, logs: pytest.LogCaptureFixture
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    engine = engine_with_key(wrong, url=voxrelay_upstream.http(""), file_max_retries=0)
    await engine.start()
    try:
        with pytest.raises(EngineFailure) as caught:
            await engine.transcribe_file(FileRequest(bytes(3200)))
    finally:
        await engine.stop()
    assert caught.value.code == "engine_unavailable" and "HTTP 401" in str(caught.value)
    assert wrong not in str(caught.value)
    assert not [r for r in logs.get_records("call") if wrong in r.getMessage()]


async def test_the_engine_must_be_started(voxrelay_upstream: ServerThread) -> None:
    engine = engine_with_key(API_KEY, url=voxrelay_upstream.http(""))
    with pytest.raises(EngineFailure, match="not started"):
        await engine.transcribe_file(FileRequest(bytes(3200)))


# Against a scripted stand-in: the errors Deepgram's cloud answers, which voxrelay never does.


class ScriptedUpstream:
    """`POST /v1/listen` answering the next scripted (status, body); "hang" answers nothing until released."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any] | str] = []
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        app = Starlette(routes=[Route("/v1/listen", self._listen, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    async def _listen(self, request: Request) -> Response:
        body = await request.body()
        self.requests.append({"query": dict(request.query_params), "bytes": len(body),
                              "auth": request.headers.get("authorization")})
        answer = self.script.pop(0)
        if answer == "hang":
            await asyncio.to_thread(self.release.wait, 30)
            return JSONResponse({}, 504)
        status, payload = answer
        if isinstance(payload, str):
            return Response(payload, status, media_type="text/plain")
        return JSONResponse(payload, status)

    def start(self) -> ScriptedUpstream:
        self._thread.start()
        ready = threading.Event()
        while not self.server.started:
            assert self._thread.is_alive()
            ready.wait(0.02)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.release.set()
        self.server.should_exit = True
        self._thread.join(10)


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream().start()
    yield upstream
    upstream.stop()


@pytest.mark.parametrize(
    ("status", "body", "code", "says"),
    [
        # Deepgram echoing the key back is hypothetical; the point is that nothing passes unscrubbed.
        (401, {"err_code": "INVALID_AUTH", "err_msg": f"Invalid credentials: {API_KEY}"}, "engine_unavailable",
         "HTTP 401"),
        (400, {"err_code": "Bad Request", "err_msg": "Bad Request: failed to process audio: corrupt or unsupported data"},
         "bad_audio", "corrupt or unsupported data"),
        (400, {"err_code": "Bad Request", "err_msg": "No such model/language/tier combination found."},
         "bad_request", "No such model"),
        (429, {"err_code": "TOO_MANY_REQUESTS", "err_msg": "Too many requests."}, "limit_exceeded", "HTTP 429"),
        (500, f"internal error for key {API_KEY}", "engine_unavailable", "HTTP 500"),
        (502, "<html>bad gateway</html>", "engine_unavailable", "HTTP 502"),
    ],
    ids=["401", "400-audio", "400-options", "429", "500", "502"],
)
async def test_upstream_errors_become_engine_failures_with_scrubbed_messages(
    scripted: ScriptedUpstream, logs: pytest.LogCaptureFixture, status: int, body: Any, code: str, says: str
) -> None:
    engine = engine_with_key(API_KEY, url=scripted.url, file_max_retries=0)
    await engine.start()
    scripted.script.append((status, body))
    try:
        with pytest.raises(EngineFailure) as caught:
            await engine.transcribe_file(FileRequest(bytes(3200)))
    finally:
        await engine.stop()
    assert caught.value.code == code and says in str(caught.value)
    assert API_KEY not in str(caught.value)
    sent = scripted.requests[-1]
    assert sent["auth"] == f"Token {API_KEY}" and sent["bytes"] == 3200
    assert sent["query"]["utterances"] == "true" and sent["query"]["detect_language"] == "true"


async def test_a_5xx_is_retried_by_the_sdk_as_configured(scripted: ScriptedUpstream) -> None:
    engine = engine_with_key(API_KEY, url=scripted.url, file_max_retries=1)
    await engine.start()
    before = len(scripted.requests)
    ok = {
        "metadata": {"request_id": "r", "sha256": "0", "created": "2026-12-03T00:00:00Z", "duration": 1.5,
                     "channels": 1, "models": ["m"], "model_info": {"m": {}}},
        "results": {"channels": [{"alternatives": [{"transcript": "Hello there.", "confidence": 0.9, "words": [
            {"word": "hello", "start": 0.1, "end": 0.4, "confidence": 0.9, "punctuated_word": "Hello"},
            {"word": "there", "start": 0.5, "end": 0.9, "confidence": 0.9, "punctuated_word": "there."}]}]}]},
    }
    scripted.script += [(503, {"err_msg": "busy"}), (200, ok)]
    try:
        language, duration, segments = await collect(engine, FileRequest(bytes(3200), language="en"))
    finally:
        await engine.stop()
    assert len(scripted.requests) - before == 2
    # No utterances in the answer: the whole transcript is one segment spanning its words.
    assert (language, duration) == ("en", 1.5)
    assert [(s.text, s.start, s.end) for s in segments] == [("Hello there.", 0.1, 0.9)]


async def test_an_upstream_that_does_not_answer_times_out(scripted: ScriptedUpstream) -> None:
    engine = engine_with_key(API_KEY, url=scripted.url, file_timeout_s=0.5, file_max_retries=0)
    await engine.start()
    scripted.release.clear()
    scripted.script.append("hang")
    try:
        with pytest.raises(EngineFailure) as caught:
            await engine.transcribe_file(FileRequest(bytes(3200)))
    finally:
        scripted.release.set()
        await engine.stop()
    assert caught.value.code == "engine_unavailable" and "did not answer within 0.5 s" in str(caught.value)


async def test_an_unreachable_upstream_is_engine_unavailable(logs: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = engine_with_key(API_KEY, url=f"http://127.0.0.1:{port}", file_max_retries=0)
    await engine.start()
    try:
        with pytest.raises(EngineFailure) as caught:
            await engine.transcribe_file(FileRequest(bytes(3200)))
    finally:
        await engine.stop()
    assert caught.value.code == "engine_unavailable" and "cannot reach Deepgram" in str(caught.value)
    assert API_KEY not in json.dumps(str(caught.value))


# End to end: the SDK -> voxrelay (--engine deepgram) -> voxrelay (local engine), on corpus speech.

CLIPS = ["jfk_inaugural.wav", "ljspeech_LJ001-0001.wav", "s10_dictation_email.wav", "s11_long_paragraph.wav"]


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=300) as client:
        yield client


def sdk(server: ServerThread, http: httpx.AsyncClient, api_key: str = "any") -> AsyncDeepgramClient:
    """The official SDK's pre-recorded client, pointed at a voxrelay gateway."""
    base = f"127.0.0.1:{server.port}"
    env = DeepgramClientEnvironment(
        base=f"http://{base}", production=f"ws://{base}", agent=f"ws://{base}", agent_rest=f"http://{base}"
    )
    return AsyncDeepgramClient(api_key=api_key, environment=env, httpx_client=http)


@pytest.fixture
def chained(local_engine_server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerThread]:
    """A gateway whose deepgram engine's upstream is a second gateway's POST /v1/listen (local engine, key required)."""
    monkeypatch.setattr(local_engine_server.gateway.settings, "listen_api_keys", API_KEY)
    engine = engine_with_key(API_KEY, url=local_engine_server.http(""), file_max_retries=0)
    server = ServerThread(Settings(port=0), engine).start()
    assert server.gateway.ready, server.gateway.start_error
    yield server
    server.stop()


async def test_files_through_the_sdk_and_two_gateways_are_transcribed_as_the_local_engine_does(
    chained: ServerThread, local_engine_server: ServerThread, http: httpx.AsyncClient, logs: pytest.LogCaptureFixture
) -> None:
    front, direct = sdk(chained, http), sdk(local_engine_server, http, API_KEY)
    references, through_chain, alone = [], [], []
    for name in CLIPS:
        c = clip(name)
        data = c.path.read_bytes()
        chained_answer: Any = await front.listen.v1.media.transcribe_file(request=data, punctuate=True, utterances=True)
        direct_answer: Any = await direct.listen.v1.media.transcribe_file(request=data, punctuate=True, utterances=True)
        references.append(c.reference)
        through_chain.append(chained_answer.results.channels[0].alternatives[0].transcript)
        alone.append(direct_answer.results.channels[0].alternatives[0].transcript)
        # The front answered through its deepgram engine, with the upstream's duration, utterances and words.
        meta = chained_answer.metadata
        assert meta.model_info[meta.models[0]]["arch"] == "deepgram"
        assert meta.duration == pytest.approx(c.duration, abs=0.02)
        utterances = chained_answer.results.utterances
        assert [u.transcript for u in utterances] == [u.transcript for u in direct_answer.results.utterances]
        assert all(0 <= u.start < u.end <= c.duration + 0.05 for u in utterances)
        assert all(a.end <= b.start + 1e-3 for a, b in itertools.pairwise(utterances))
        words = chained_answer.results.channels[0].alternatives[0].words
        assert [w.word for w in words] == [w.word for u in utterances for w in u.words]
        assert len(words) >= 0.6 * len(c.reference.split())
    # Nothing lost or added on the way: the same text as the local engine gives directly...
    assert through_chain == alone
    # ...and that text is the speech: tiny.en int8 whole-file (beam 5) scores 0.007 on these clips (AMD EPYC);
    # the bound leaves room for another CPU's arithmetic, not for a lost sentence (one is > 0.1).
    score = wer(references, through_chain)
    assert score <= 0.05, list(zip(references, through_chain, strict=True))


async def test_the_openai_file_endpoint_works_on_the_deepgram_engine_too(
    chained: ServerThread, local_engine_server: ServerThread, logs: pytest.LogCaptureFixture
) -> None:
    """OpenAI's SDK -> voxrelay (deepgram engine) -> voxrelay (local): the same engine path, another codec."""
    c = clip("s10_dictation_email.wav")
    front = AsyncOpenAI(api_key="unused", base_url=chained.http("/v1"), max_retries=0)
    direct = AsyncOpenAI(api_key=API_KEY, base_url=local_engine_server.http("/v1"), max_retries=0)
    async with front, direct:
        through: Any = await front.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", c.path.read_bytes()), response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
        alone: Any = await direct.audio.transcriptions.create(
            model="whisper-1", file=("a.wav", c.path.read_bytes()), response_format="verbose_json",
        )
    assert normalize(through.text) == normalize(alone.text)
    assert [s.text.strip() for s in through.segments] == [s.text.strip() for s in alone.segments]
    assert through.words and all(0 <= w.start <= w.end <= c.duration + 0.05 for w in through.words)
    assert wer([c.reference], [through.text]) <= 0.1, through.text


async def test_dictation_is_passed_on_for_deepgram_to_convert(
    engine: DeepgramEngine, upstream_engine: FileCountingEngine
) -> None:
    await collect(engine, FileRequest(linear16_wav(bytes(19956), 16000, 1), dictation=True))
    assert upstream_engine.requests[-1].dictation  # dictation=true reached the upstream with punctuation
    await collect(engine, FileRequest(linear16_wav(bytes(19956), 16000, 1)))
    assert not upstream_engine.requests[-1].dictation
