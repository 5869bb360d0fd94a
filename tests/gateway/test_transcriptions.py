"""POST /v1/audio/transcriptions end to end: a real gateway with the local engine, driven by the real `openai` SDK.

Transcripts are judged by WER against the corpus references and against whole-file faster-whisper on
the same audio (never by exact strings); subtitles by their cue times; errors by the SDK's exceptions.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from openai import OpenAI

from tests.support import FILE_FORMATS, ServerThread, clip, encode_file, silence, until, wer
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.settings import Settings

KEY = "sk-voxrelay-test"
NAMES = ["jfk_inaugural.wav", "ljspeech_LJ001-0001.wav", "s07_names_message.wav", "fw_stereo_left.wav"]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    settings = Settings(port=0, api_keys=KEY, max_file_jobs=1, handshakes_per_minute=0)
    server = ServerThread(settings, LocalEngine()).start()
    assert server.gateway.ready, server.gateway.start_error
    yield server
    server.stop()


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, str]:
    """About 33 s of corpus speech (two Whisper windows), and its reference text."""
    audio = np.concatenate([np.concatenate([clip(n).pcm(), silence(0.6)]) for n in NAMES])
    return audio, " ".join(clip(n).reference for n in NAMES)


def faster_whisper(server: ServerThread, audio: np.ndarray, **options: Any) -> str:
    """What whole-file faster-whisper says on the same audio (the engine's model, called directly)."""
    segments, _ = server.gateway.engine.decoder.model.transcribe(audio, beam_size=5, **options)
    return "".join(s.text for s in segments)


@pytest.fixture(scope="module")
def whole_file(server: ServerThread, speech: tuple[np.ndarray, str]) -> str:
    return faster_whisper(server, speech[0])


@pytest.fixture
def client(server: ServerThread) -> Iterator[OpenAI]:
    # Closed after each test: a pooled connection left to the garbage collector warns in whichever test runs then.
    with OpenAI(api_key=KEY, base_url=server.http("/v1"), max_retries=0, _strict_response_validation=True) as sdk:
        yield sdk


def wav(pcm: np.ndarray) -> tuple[str, bytes, str]:
    return ("speech.wav", encode_file(pcm, "wav"), "audio/wav")


def judge(text: str, reference: str, whole_file: str, reference_wer: float = 0.15) -> None:
    assert wer([reference], [text]) <= reference_wer, text
    assert wer([whole_file], [text]) <= 0.03, (whole_file, text)


def test_json(client: OpenAI, speech: tuple[np.ndarray, str], whole_file: str) -> None:
    result = client.audio.transcriptions.create(file=wav(speech[0]), model="whisper-1", response_format="json")
    judge(result.text, speech[1], whole_file)
    assert result.usage is not None and result.usage.type == "duration"
    assert result.usage.seconds == pytest.approx(len(speech[0]) / 16000, abs=0.01)


def test_text_with_prompt_and_language(server: ServerThread, client: OpenAI, speech: tuple[np.ndarray, str]) -> None:
    prompt = "A speech, a book and a message."
    text = client.audio.transcriptions.create(
        file=wav(speech[0]), model="gpt-4o-transcribe", response_format="text", language="en", prompt=prompt,
        temperature=0.0,
    )
    assert isinstance(text, str) and text.endswith("\n")
    # The prompt reaches the decoder: the text is what faster-whisper says with that prompt (tiny.en
    # drops a few more words with it, hence the looser reference bound).
    judge(text, speech[1], faster_whisper(server, speech[0], initial_prompt=prompt, language="en"), reference_wer=0.2)


def test_verbose_json_with_words_and_segments(client: OpenAI, speech: tuple[np.ndarray, str], whole_file: str) -> None:
    result = client.audio.transcriptions.create(
        file=wav(speech[0]), model="whisper-1", response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    judge(result.text, speech[1], whole_file)
    duration = len(speech[0]) / 16000
    assert result.language == "english" and result.duration == pytest.approx(duration, abs=0.01)
    segments, words = result.segments or [], result.words or []
    assert len(segments) >= 4 and len(words) >= 50
    assert [s.id for s in segments] == list(range(len(segments)))
    assert all(0 <= s.start < s.end <= duration + 0.1 and s.tokens for s in segments)
    assert all(a.start <= b.start for a, b in itertools.pairwise(segments))
    assert wer([result.text], [" ".join(s.text for s in segments)]) == 0
    for word in words:  # every word inside a segment (Whisper's word times may overhang its segment by a hair)
        assert any(s.start - 0.05 <= word.start <= word.end <= s.end + 0.05 for s in segments), word
    assert wer([result.text], [" ".join(w.word for w in words)]) <= 0.02


def test_verbose_json_without_granularities_has_segments_only(client: OpenAI, speech: tuple[np.ndarray, str]) -> None:
    short = clip("jfk_inaugural.wav")
    result = client.audio.transcriptions.create(file=wav(short.pcm()), model="whisper-1", response_format="verbose_json")
    assert result.segments and result.words is None
    assert wer([short.reference], [result.text]) <= 0.15


def cue_times(body: str, decimal: str) -> list[tuple[float, float, str]]:
    pattern = rf"(\d\d):(\d\d):(\d\d){re.escape(decimal)}(\d\d\d) --> (\d\d):(\d\d):(\d\d){re.escape(decimal)}(\d\d\d)\n(.+)\n"
    cues = []
    for match in re.finditer(pattern, body):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups()[:8])
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, match.group(9)))
    return cues


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles(fmt: str, client: OpenAI, speech: tuple[np.ndarray, str], whole_file: str) -> None:
    body = client.audio.transcriptions.create(file=wav(speech[0]), model="whisper-1", response_format=fmt)  # type: ignore[call-overload]
    assert isinstance(body, str)
    cues = cue_times(body, "," if fmt == "srt" else ".")
    assert len(cues) >= 4
    if fmt == "vtt":
        assert body.startswith("WEBVTT\n\n")
    else:
        assert [int(n) for n in re.findall(r"^(\d+)\n\d\d:", body, re.M)] == list(range(1, len(cues) + 1))
    duration = len(speech[0]) / 16000
    assert all(0 <= start < end <= duration + 0.1 for start, end, _ in cues)
    assert all(a[1] <= b[0] + 0.01 for a, b in itertools.pairwise(cues))  # in order, not overlapping
    judge(" ".join(text for _, _, text in cues), speech[1], whole_file)


def test_stream(client: OpenAI, speech: tuple[np.ndarray, str], whole_file: str) -> None:
    events = list(client.audio.transcriptions.create(file=wav(speech[0]), model="gpt-4o-transcribe", stream=True))
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done" and set(types[:-1]) == {"transcript.text.delta"} and len(types) >= 3
    deltas = "".join(e.delta for e in events[:-1])  # type: ignore[union-attr]
    assert deltas == events[-1].text  # type: ignore[union-attr]
    judge(deltas, speech[1], whole_file)


@pytest.mark.parametrize("kind", [k for k in FILE_FORMATS if k != "wav"])
def test_every_container(kind: str, client: OpenAI, whole_file: str) -> None:
    jfk = clip("jfk_inaugural.wav")
    suffix = FILE_FORMATS[kind][3]
    result = client.audio.transcriptions.create(file=(f"jfk.{suffix}", encode_file(jfk.pcm(), kind)), model="whisper-1")
    assert wer([jfk.reference], [result.text]) <= 0.15, result.text


# Refusals, each in OpenAI's error shape and the SDK's exception.


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}, body
    return body


def test_a_truncated_file_is_400(client: OpenAI) -> None:
    data = encode_file(clip("jfk_inaugural.wav").pcm(), "wav")
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(file=("cut.wav", data[: len(data) // 3]), model="whisper-1")
    assert error_of(raised.value)["param"] == "file" and "truncated" in raised.value.message


def test_not_audio_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(file=("notes.mp3", b"meeting notes\n" * 500), model="whisper-1")
    assert error_of(raised.value)["param"] == "file"


@pytest.mark.parametrize(
    "options, param",
    [
        ({"response_format": "xml"}, "response_format"),
        ({"timestamp_granularities": ["word"]}, "timestamp_granularities[]"),
        ({"temperature": 3}, "temperature"),
        ({"extra_body": {"beam_size": "5"}}, "beam_size"),
    ],
)
def test_a_wrong_field_is_400_naming_it(options: dict[str, Any], param: str, client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.audio.transcriptions.create(file=wav(silence(1.0)), model="whisper-1", **options)
    assert error_of(raised.value)["param"] == param


def test_missing_file_or_model_is_400(server: ServerThread) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    url = server.http("/v1/audio/transcriptions")
    no_file = httpx.post(url, headers=headers, data={"model": "whisper-1"})
    no_model = httpx.post(url, headers=headers, files={"file": ("a.wav", encode_file(silence(1.0), "wav"))})
    assert (no_file.status_code, no_file.json()["error"]["param"]) == (400, "file")
    assert (no_model.status_code, no_model.json()["error"]["param"]) == (400, "model")


def test_a_bad_key_is_401(server: ServerThread) -> None:
    client = OpenAI(api_key="sk-wrong", base_url=server.http("/v1"), max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        client.audio.transcriptions.create(file=wav(silence(1.0)), model="whisper-1")
    assert error_of(raised.value)["code"] == "invalid_api_key"


def test_too_big_is_413_by_length_and_by_count(server: ServerThread, client: OpenAI) -> None:
    settings = server.gateway.settings
    limit = settings.max_upload_bytes
    settings.max_upload_bytes = 100_000
    try:
        big = encode_file(clip("jfk_inaugural.wav").pcm(), "wav")  # 352 kB
        with pytest.raises(openai.APIStatusError) as raised:  # the SDK sends Content-Length
            client.audio.transcriptions.create(file=("big.wav", big), model="whisper-1")
        assert raised.value.status_code == 413 and error_of(raised.value)["code"] == "file_too_large"
        # Chunked, without a length: refused while counting.
        boundary = "vrboundary"
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
                "Content-Type: audio/wav\r\n\r\n").encode() + big + f"\r\n--{boundary}--\r\n".encode()
        response = httpx.post(
            server.http("/v1/audio/transcriptions"), content=iter([body[i : i + 16384] for i in range(0, len(body), 16384)]),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    finally:
        settings.max_upload_bytes = limit


def test_over_the_duration_limit_is_400(server: ServerThread, client: OpenAI) -> None:
    settings = server.gateway.settings
    limit = settings.max_file_duration_s
    settings.max_file_duration_s = 5
    try:
        with pytest.raises(openai.BadRequestError) as raised:
            client.audio.transcriptions.create(file=wav(clip("jfk_inaugural.wav").pcm()), model="whisper-1")
        assert error_of(raised.value)["code"] == "audio_too_long"
    finally:
        settings.max_file_duration_s = limit


def metric(server: ServerThread, name: str, **labels: str) -> float:
    text = httpx.get(server.http("/metrics")).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0 if wanted else float("nan")


def test_over_the_job_cap_is_429_and_a_client_that_leaves_stops_the_work(server: ServerThread, client: OpenAI) -> None:
    gateway = server.gateway

    def file_steps() -> float:  # file-lane steps so far: transcribe(), each next() of its segments, a close
        return metric(server, "voxrelay_engine_decode_seconds_count", kind="file")

    long_audio = np.concatenate([clip(n).pcm() for n in NAMES * 12])  # about 6 min: twelve 30 s windows or more
    before, left_before = file_steps(), metric(server, "voxrelay_file_jobs_total", status="disconnected")
    stream = client.audio.transcriptions.create(file=wav(long_audio), model="whisper-1", stream=True)
    first = next(iter(stream))  # one window decoded: the job holds the only slot
    assert first.type == "transcript.text.delta" and gateway.file_jobs == 1
    with pytest.raises(openai.RateLimitError) as raised:
        client.audio.transcriptions.create(file=wav(silence(1.0)), model="whisper-1")
    assert raised.value.response.headers["retry-after"] == str(server.gateway.settings.retry_after_s)
    assert error_of(raised.value)["code"] == "rate_limit_exceeded"
    stream.close()  # the client goes away mid-stream
    asyncio.run(until(lambda: gateway.file_jobs == 0))  # released after the segment iterator was closed
    assert metric(server, "voxrelay_file_jobs_total", status="disconnected") == left_before + 1
    lane = gateway.engine.file_lane  # a window on the lane when the client left finishes: wait for it
    asyncio.run(until(lambda: lane.idle))
    at_disconnect = file_steps()
    # Decoding the whole file takes transcribe() + a step per segment (>= one per window) + the last: over 13.
    assert at_disconnect - before < 12, at_disconnect - before
    # Nothing of the abandoned job runs afterwards: a new upload's steps queue behind anything left of it (the
    # lane is FIFO), and the step count grows by exactly the new job's own steps.
    result = client.audio.transcriptions.create(
        file=wav(clip("fw_stereo_right.wav").pcm()), model="whisper-1", response_format="verbose_json"
    )
    assert result.text and result.segments
    assert file_steps() - at_disconnect == 1 + len(result.segments) + 1


def test_a_client_that_gives_up_on_a_plain_answer_stops_the_work_too(server: ServerThread) -> None:
    gateway = server.gateway
    left_before = metric(server, "voxrelay_file_jobs_total", status="disconnected")
    long_audio = np.concatenate([clip(n).pcm() for n in NAMES * 12])  # minutes of decoding if nobody stopped it
    with pytest.raises(httpx.ReadTimeout):  # the client stops waiting and closes the connection
        httpx.post(server.http("/v1/audio/transcriptions"), headers={"Authorization": f"Bearer {KEY}"},
                   data={"model": "whisper-1"}, files={"file": ("long.wav", encode_file(long_audio, "wav"))},
                   timeout=httpx.Timeout(30.0, read=2.0))
    # The server notices between two segments and closes the segment iterator.
    asyncio.run(until(lambda: metric(server, "voxrelay_file_jobs_total", status="disconnected") == left_before + 1))
    asyncio.run(until(lambda: gateway.file_jobs == 0))


def test_metrics_count_jobs_and_audio(server: ServerThread, client: OpenAI) -> None:
    ok = metric(server, "voxrelay_file_jobs_total", status="ok")
    audio = metric(server, "voxrelay_audio_seconds_total", endpoint="v1-audio-transcriptions")
    client.audio.transcriptions.create(file=wav(clip("fw_stereo_left.wav").pcm()), model="whisper-1")
    assert metric(server, "voxrelay_file_jobs_total", status="ok") == ok + 1
    assert metric(server, "voxrelay_audio_seconds_total", endpoint="v1-audio-transcriptions") == pytest.approx(audio + 5.0, abs=0.05)
    assert metric(server, "voxrelay_file_transcription_seconds_count", engine="local") >= 1


def test_the_json_error_body_is_openais_shape(server: ServerThread) -> None:
    response = httpx.post(server.http("/v1/audio/transcriptions"), headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    assert json.loads(response.text)["error"]["type"] == "invalid_request_error"


def test_an_upload_over_the_default_25_mib_is_413_not_a_reset_connection(client: OpenAI) -> None:
    body = b"\0" * (25 * 1024 * 1024 + 100_000)  # refused from Content-Length; the body is read and dropped
    with pytest.raises(openai.APIStatusError) as raised:
        client.audio.transcriptions.create(file=("big.wav", body), model="whisper-1")
    assert raised.value.status_code == 413 and "26214400" in error_of(raised.value)["message"]
