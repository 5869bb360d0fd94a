"""`POST /v1/listen`, Deepgram's pre-recorded API served by voxrelay, driven by the real deepgram-sdk.

The engine is `tests.fakes.FileCountingEngine`: it listens to nothing, and its segments name the byte
ranges they cover, so every field of the response can be computed from the upload alone. What the
gateway adds (query, admission, limits, decoding, Deepgram's response and error shapes) is what is
tested here; real speech goes through the same route in tests/engines/deepgram/test_files.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError

from tests.fakes import EchoEngine, FileCountingEngine, PcmFileEngine
from tests.support import ServerThread, clip, until
from voxrelay.audio.pcm import linear16_wav
from voxrelay.settings import Settings

KEY = f"listen-{uuid.uuid4().hex}"
LIMIT = 200_000  # max_upload_bytes of the test server
NO_RETRY: Any = {"max_retries": 0}  # the SDK retries 429/5xx with backoff; these tests want the first answer


_http_clients: list[httpx.AsyncClient] = []


def sdk(server: ServerThread, api_key: str = KEY) -> AsyncDeepgramClient:
    """The official SDK pointed at the test server (its HTTP client is closed after the test)."""
    base = f"127.0.0.1:{server.port}"
    env = DeepgramClientEnvironment(
        base=f"http://{base}", production=f"ws://{base}", agent=f"ws://{base}", agent_rest=f"http://{base}"
    )
    http = httpx.AsyncClient(timeout=30)
    _http_clients.append(http)
    return AsyncDeepgramClient(api_key=api_key, environment=env, httpx_client=http)


@pytest_asyncio.fixture(autouse=True)
async def close_http_clients() -> AsyncIterator[None]:
    yield
    while _http_clients:
        await _http_clients.pop().aclose()


@pytest.fixture(scope="module")
def engine() -> FileCountingEngine:
    return FileCountingEngine(chunk=16000)


@pytest.fixture(scope="module")
def server(engine: FileCountingEngine) -> Iterator[ServerThread]:
    settings = Settings(port=0, listen_api_keys=KEY, max_upload_bytes=LIMIT, max_file_jobs=1)
    server = ServerThread(settings, engine).start()
    assert server.gateway.ready
    yield server
    server.stop()


def wav(pcm: bytes) -> bytes:
    """A 16 kHz mono WAV around `pcm`: every upload is decoded, also for engines that take the bytes."""
    return linear16_wav(pcm, 16000, 1)


def expected_ranges(total: int, chunk: int = 16000) -> list[tuple[int, int]]:
    return [(first, min(first + chunk, total)) for first in range(0, total, chunk)]


async def test_a_file_comes_back_in_deepgrams_shape_with_utterances_and_words(
    server: ServerThread, engine: FileCountingEngine
) -> None:
    audio = wav(bytes(range(256)) * 313)  # 80172 bytes: five full segments and a short sixth
    raw = await sdk(server).listen.v1.media.with_raw_response.transcribe_file(
        request=audio, model="nova-3", punctuate=True, utterances=True
    )
    response: Any = raw.data
    ranges = expected_ranges(len(audio))
    assert len(ranges) == 6
    alternative = response.results.channels[0].alternatives[0]
    assert alternative.transcript == " ".join(f"Bytes {a}-{b}." for a, b in ranges)
    words = alternative.words
    assert [w.word for w in words] == [x for a, b in ranges for x in ("bytes", f"{a}-{b}")]
    assert [w.punctuated_word for w in words][:2] == ["Bytes", f"0-{ranges[0][1]}."]
    assert all(w1.end <= w2.start + 1e-9 for w1, w2 in itertools.pairwise(words))
    assert alternative.confidence == pytest.approx(0.85, abs=1e-3)  # the mean of the words' 0.9 and 0.8
    utterances = response.results.utterances
    assert [(u.start, u.end) for u in utterances] == [(round(a / 32000, 3), round(b / 32000, 3)) for a, b in ranges]
    assert [u.transcript for u in utterances] == [f"Bytes {a}-{b}." for a, b in ranges]
    assert all(len(u.words) == 2 and u.channel == 0 for u in utterances)
    assert len({u.id for u in utterances}) == 6
    meta = response.metadata
    assert meta.duration == round(len(audio) / 32000, 3)
    assert meta.sha256 == hashlib.sha256(audio).hexdigest()
    assert meta.request_id == raw.headers["dg-request-id"]
    assert meta.channels == 1 and meta.models == list(meta.model_info)
    assert meta.model_info[meta.models[0]]["arch"] == "file-counting"
    # No language asked: the engine detects one, and Deepgram's field says which.
    assert response.results.channels[0].detected_language == "en"
    request = engine.requests[-1]
    assert request.audio == audio and request.word_timings and request.language is None


async def test_options_reach_the_engine_and_shape_the_answer(server: ServerThread, engine: FileCountingEngine) -> None:
    audio = wav(bytes(40000))  # 40044 bytes
    response: Any = await sdk(server).listen.v1.media.transcribe_file(
        request=audio, language="fr-CA", keyterm=["Voxrelay", "Deepgram"], paragraphs=True, tag="t1"
    )
    request = engine.requests[-1]
    assert request.language == "fr" and request.prompt == "Voxrelay, Deepgram"
    channel = response.results.channels[0]
    assert channel.detected_language is None  # a language was given: nothing was detected
    # punctuate is off by default, as at Deepgram: bare lowercase words, no punctuated_word.
    alternative = channel.alternatives[0]
    assert alternative.transcript == "bytes 0-16000 bytes 16000-32000 bytes 32000-40044"
    assert all(getattr(w, "punctuated_word", None) is None for w in alternative.words)
    assert response.results.utterances is None  # not asked for
    # Contiguous segments: one paragraph, one sentence per segment.
    paragraphs = alternative.paragraphs.paragraphs
    assert len(paragraphs) == 1 and len(paragraphs[0].sentences) == 3
    assert paragraphs[0].start == 0.0 and paragraphs[0].end == round(40044 / 32000, 3)
    assert [w["parameter"] for w in response.metadata.model_extra["warnings"]] == ["tag"]


async def test_raw_linear16_is_wrapped_in_a_wav_header_for_an_engine_that_reads_files(
    server: ServerThread, engine: FileCountingEngine
) -> None:
    pcm = bytes(32000)
    # The SDK's transcribe_file has no sample_rate argument; Deepgram's API takes it as a query parameter.
    await sdk(server).listen.v1.media.transcribe_file(
        request=pcm, encoding="linear16", request_options={"additional_query_parameters": {"sample_rate": 16000}}
    )
    sent = engine.requests[-1].audio
    assert isinstance(sent, bytes) and sent[:4] == b"RIFF" and sent[8:12] == b"WAVE"
    assert len(sent) == 44 + len(pcm) and sent.endswith(pcm)


@pytest.mark.parametrize("api_key", ["wrong-key", ""])
async def test_a_bad_or_missing_key_is_refused_with_deepgrams_401(server: ServerThread, api_key: str) -> None:
    client = sdk(server, api_key=api_key or "x")
    headers = {"Authorization": ""} if not api_key else {}
    with pytest.raises(ApiError) as caught:
        await client.listen.v1.media.transcribe_file(
            request=bytes(3200), request_options={"additional_headers": headers, **NO_RETRY}
        )
    assert caught.value.status_code == 401
    body = caught.value.body
    assert body["err_code"] == "INVALID_AUTH" and body["request_id"]
    assert KEY not in str(body)


async def test_an_upload_over_the_limit_is_refused_with_413(server: ServerThread, engine: FileCountingEngine) -> None:
    before = len(engine.requests)
    with pytest.raises(ApiError) as caught:
        await sdk(server).listen.v1.media.transcribe_file(request=bytes(LIMIT + 1), request_options=NO_RETRY)
    assert caught.value.status_code == 413 and caught.value.body["err_code"] == "PAYLOAD_TOO_LARGE"

    async def chunks() -> Any:  # no Content-Length: the limit holds while the body streams in
        for _ in range(LIMIT // 10000 + 1):
            yield bytes(10000)

    with pytest.raises(ApiError) as caught:
        await sdk(server).listen.v1.media.transcribe_file(request=chunks(), request_options=NO_RETRY)
    assert caught.value.status_code == 413
    assert len(engine.requests) == before
    metrics = server.gateway.metrics.render().decode()
    assert 'voxrelay_errors_total{code="413",endpoint="v1-listen"} 2.0' in metrics
    # At the limit exactly, it is taken.
    await sdk(server).listen.v1.media.transcribe_file(request=wav(bytes(LIMIT - 44)))
    assert len(engine.requests) == before + 1


async def test_concurrent_files_past_the_limit_get_429_with_retry_after(
    server: ServerThread, engine: FileCountingEngine
) -> None:
    engine.release.clear()
    first = asyncio.create_task(sdk(server).listen.v1.media.transcribe_file(request=wav(b"HOLD" + bytes(31996))))
    try:
        await until(lambda: engine.holding == 1)
        with pytest.raises(ApiError) as caught:
            await sdk(server).listen.v1.media.with_raw_response.transcribe_file(
                request=bytes(3200), request_options=NO_RETRY
            )
        assert caught.value.status_code == 429 and caught.value.body["err_code"] == "TOO_MANY_REQUESTS"
        assert caught.value.headers is not None and int(caught.value.headers["retry-after"]) >= 1
        # One count of file jobs for both file endpoints: OpenAI's is full too.
        async with httpx.AsyncClient(timeout=30) as http:
            openai = await http.post(server.http("/v1/audio/transcriptions"), files={"file": ("a.wav", wav(bytes(3200)))},
                                     data={"model": "whisper-1"})
        assert openai.status_code == 429 and int(openai.headers["retry-after"]) >= 1
    finally:
        engine.release.set()
    response: Any = await first
    assert response.metadata.duration == round(32044 / 32000, 3)
    assert server.gateway.file_jobs == 0 and not server.gateway.gatekeeper.per_key
    await sdk(server).listen.v1.media.transcribe_file(request=wav(bytes(3200)))  # the slot is free again


async def test_a_client_that_goes_away_stops_its_transcription(server: ServerThread, engine: FileCountingEngine) -> None:
    engine.release.clear()
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            post = asyncio.create_task(http.post(
                server.http("/v1/listen"), content=wav(b"HOLD" + bytes(3196)), headers={"Authorization": f"Token {KEY}"}
            ))
            await until(lambda: engine.holding == 1)
            post.cancel()  # the client gives up: its connection is closed
            with pytest.raises(asyncio.CancelledError):
                await post
        # The job ended while the engine was still holding it: cancelled, not finished.
        await until(lambda: server.gateway.file_jobs == 0 and engine.holding == 0)
        assert not engine.release.is_set() and not server.gateway.gatekeeper.per_key
    finally:
        engine.release.set()


async def test_refused_features_and_remote_urls_are_400s_that_say_why(server: ServerThread) -> None:
    client = sdk(server)
    with pytest.raises(ApiError) as caught:
        await client.listen.v1.media.transcribe_file(request=bytes(3200), diarize=True)
    assert caught.value.status_code == 400 and "diarization" in caught.value.body["err_msg"]
    with pytest.raises(ApiError) as caught:
        await client.listen.v1.media.transcribe_url(url="https://example.com/a.wav")
    assert caught.value.status_code == 400 and "does not fetch remote URLs" in caught.value.body["err_msg"]
    with pytest.raises(ApiError) as caught:
        await client.listen.v1.media.transcribe_file(request=bytes(3200), encoding="mulaw")
    assert caught.value.status_code == 400 and "linear16" in caught.value.body["err_msg"]


async def test_audio_that_is_no_audio_or_too_long_never_reaches_an_engine_that_takes_bytes(
    server: ServerThread, engine: FileCountingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(engine.requests)
    with pytest.raises(ApiError) as caught:
        await sdk(server).listen.v1.media.transcribe_file(request=b"not audio at all " * 100, request_options=NO_RETRY)
    assert caught.value.status_code == 400
    assert caught.value.body["err_msg"].startswith("Bad Request: failed to process audio")
    monkeypatch.setattr(server.gateway.settings, "max_file_duration_s", 1.0)
    for upload, query in [(wav(bytes(3 * 32000)), None), (bytes(3 * 32000), {"sample_rate": 16000})]:
        with pytest.raises(ApiError) as caught:
            await sdk(server).listen.v1.media.transcribe_file(
                request=upload, encoding="linear16" if query else None,
                request_options={"additional_query_parameters": query or {}, **NO_RETRY},
            )
        assert caught.value.status_code == 400 and "longer than the 1 s" in caught.value.body["err_msg"]
    assert len(engine.requests) == before and server.gateway.file_jobs == 0


@pytest.mark.parametrize(
    ("upload", "status", "err_code", "text"),
    [
        (wav(b"FAIL" + bytes(3196)), 400, "Bad Request", "failed to process audio: the fake could not decode"),
        (wav(b"DOWN" + bytes(3196)), 503, "SERVICE_UNAVAILABLE", "upstream is down"),
    ],
)
async def test_engine_failures_map_to_deepgram_statuses(
    server: ServerThread, upload: bytes, status: int, err_code: str, text: str
) -> None:
    with pytest.raises(ApiError) as caught:
        await sdk(server).listen.v1.media.transcribe_file(request=upload, request_options=NO_RETRY)
    assert caught.value.status_code == status
    assert caught.value.body["err_code"] == err_code and text in caught.value.body["err_msg"]
    assert server.gateway.file_jobs == 0


async def test_an_engine_without_file_transcription_answers_501() -> None:
    server = ServerThread(Settings(port=0), EchoEngine()).start()
    try:
        with pytest.raises(ApiError) as caught:
            await sdk(server).listen.v1.media.transcribe_file(request=bytes(3200), request_options=NO_RETRY)
        assert caught.value.status_code == 501 and "cannot transcribe files" in caught.value.body["err_msg"]
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pcm_server() -> Iterator[ServerThread]:
    server = ServerThread(Settings(port=0), PcmFileEngine()).start()
    yield server
    server.stop()


async def test_an_engine_that_takes_pcm_gets_the_file_decoded(pcm_server: ServerThread) -> None:
    c = clip("s03_question_weather.wav")
    data = c.path.read_bytes()
    response: Any = await sdk(pcm_server).listen.v1.media.transcribe_file(request=data, utterances=True)
    # PcmFileEngine reports one second per 16000 samples: the decoded length is the clip's.
    assert response.metadata.duration == pytest.approx(c.duration, abs=0.01)
    assert len(response.results.utterances) == math.ceil(c.duration - 1e-6)
    # A truncated file is refused rather than half transcribed (audio.file compares it with its header).
    with pytest.raises(ApiError) as caught:
        await sdk(pcm_server).listen.v1.media.transcribe_file(request=data[: len(data) // 2])
    assert caught.value.status_code == 400 and "truncated" in caught.value.body["err_msg"]


async def test_bytes_that_are_no_audio_are_deepgrams_400(pcm_server: ServerThread) -> None:
    with pytest.raises(ApiError) as caught:
        await sdk(pcm_server).listen.v1.media.transcribe_file(request=b"this is not audio " * 200)
    assert caught.value.status_code == 400
    assert caught.value.body["err_msg"].startswith("Bad Request: failed to process audio")
    assert pcm_server.gateway.file_jobs == 0
