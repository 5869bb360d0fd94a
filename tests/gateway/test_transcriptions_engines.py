"""POST /v1/audio/transcriptions with engines other than the local one: not ready, no file support, raw audio."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from openai import OpenAI

from tests.gateway.test_transcriptions import error_of, metric, wav
from tests.support import ServerThread, clip, encode_file, silence, until
from voxrelay.engines.base import Capabilities, Engine, EngineFailure, EngineStream, StreamConfig
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript
from voxrelay.settings import Settings


class NeverReady(Engine):
    name = "never"

    async def start(self) -> None:
        raise EngineFailure("the model file is missing")

    async def open(self, config: StreamConfig) -> EngineStream:
        raise EngineFailure("not ready")


def test_engine_not_ready_is_503() -> None:
    server = ServerThread(Settings(port=0), NeverReady()).start()
    try:
        with OpenAI(api_key="unused", base_url=server.http("/v1"), max_retries=0) as client, \
                pytest.raises(openai.InternalServerError) as raised:
            client.audio.transcriptions.create(file=wav(silence(1.0)), model="whisper-1")
        assert raised.value.status_code == 503 and raised.value.response.headers["retry-after"]
        assert "model file is missing" in error_of(raised.value)["message"]
    finally:
        server.stop()


def test_an_engine_without_file_support_is_400() -> None:
    from tests.fakes import CountingEngine  # a raw-audio engine that streams only

    server = ServerThread(Settings(port=0), CountingEngine()).start()
    try:
        response = httpx.post(server.http("/v1/audio/transcriptions"), data={"model": "m"},
                              files={"file": ("a.wav", encode_file(silence(1.0), "wav"))})
        assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported"
    finally:
        server.stop()


class RawFileEngine(Engine):
    """A raw-audio engine with files (as Deepgram's): says how many bytes it got, or fails after one segment."""

    name = "rawfile"
    capabilities = Capabilities(raw_audio=True, file_transcription=True)

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[FileRequest] = []

    async def start(self) -> None:
        self.started = True

    async def open(self, config: StreamConfig) -> EngineStream:
        raise EngineFailure("files only")

    async def transcribe_file(self, request: FileRequest) -> FileTranscript:
        self.requests.append(request)
        fail = request.prompt == "fail"

        async def segments():  # type: ignore[no-untyped-def]
            yield FileSegment(0, 0.0, 1.0, f" got {len(request.audio)} bytes")
            if fail:
                raise RuntimeError("upstream went away")

        return FileTranscript("en", 1.0, segments())


def test_a_raw_audio_engine_gets_the_upload_as_it_came_and_a_failure_mid_stream_reaches_the_sdk() -> None:
    engine = RawFileEngine()
    server = ServerThread(Settings(port=0), engine).start()
    try:
        with OpenAI(api_key="unused", base_url=server.http("/v1"), max_retries=0) as client:
            data = encode_file(clip("fw_stereo_left.wav").pcm(), "mp3")
            result = client.audio.transcriptions.create(file=("a.mp3", data), model="nova-3", language="de", prompt="Hi")
            assert result.text == f"got {len(data)} bytes"
            request = engine.requests[0]
            assert request.audio == data and (request.filename, request.language, request.prompt) == ("a.mp3", "de", "Hi")
            stream = client.audio.transcriptions.create(file=("a.mp3", data), model="nova-3", prompt="fail", stream=True)
            events = iter(stream)
            assert next(events).type == "transcript.text.delta"
            with pytest.raises(openai.APIError, match="upstream went away"):
                next(events)
            # Counted once the response is over (the client may read the error event before that).
            asyncio.run(until(lambda: metric(server, "voxrelay_file_jobs_total", status="error") == 1))
    finally:
        server.stop()


def test_a_browser_origin_not_allowed_is_403_before_the_upload_is_read() -> None:
    from tests.fakes import FileCountingEngine

    engine = FileCountingEngine()
    server = ServerThread(Settings(port=0, allowed_origins="https://app.example"), engine).start()
    try:
        upload = wav(silence(1.0))
        for origin, allowed in (("https://evil.example", False), ("https://app.example", True)):
            with OpenAI(api_key="unused", base_url=server.http("/v1"), max_retries=0,
                        default_headers={"Origin": origin}) as client:
                if allowed:
                    assert client.audio.transcriptions.create(file=upload, model="whisper-1").text
                else:
                    with pytest.raises(openai.PermissionDeniedError) as raised:
                        client.audio.transcriptions.create(file=upload, model="whisper-1")
                    assert raised.value.status_code == 403 and "origin" in error_of(raised.value)["message"].lower()
        assert len(engine.requests) == 1  # the refused upload never reached the engine
    finally:
        server.stop()
