"""`POST /v1/audio/transcriptions`: OpenAI's file endpoint over the engine's whole-file transcription.

The order of one request: admission (the one `Gatekeeper` path: key, origin, rate, draining,
the file-job cap, engine readiness) before a byte of the body is read; then the body, refused
with 413 as soon as it is known to be too large (`Content-Length`, or counting while reading,
so an oversized upload is never held whole); the form (`protocol.openai_files`); the file,
decoded off the event loop (`audio.file`); then the engine's segments, rendered in the asked
format or streamed as Server-Sent Events. A client that leaves stops the engine's work: the
segment iterator is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive, Scope, Send

from voxrelay.audio.file import AudioDecodeError, AudioTooLong, decode_file
from voxrelay.engines.base import EngineFailure
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript
from voxrelay.gateway.state import Gateway
from voxrelay.ops.metrics import FileStatus
from voxrelay.protocol.openai_files import OpenAIError, SseText, TranscriptionParams, content_type, parse_form, render
from voxrelay.security.admission import Admission, Refusal

__all__ = ["create_router"]

log = logging.getLogger("voxrelay.gateway.transcriptions")

_FORM_SLACK = 64 * 1024  # the other form fields and multipart framing, on top of the file itself
_MAX_FIELDS = 64
_DRAIN_LIMIT = 64 * 1024 * 1024  # an oversized body up to this is read and dropped, so the client sees the 413


class _TooLarge(Exception):
    pass


def create_router(gateway: Gateway) -> APIRouter:
    router = APIRouter()

    @router.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await _Upload(gateway, request).run()

    return router


class _Upload:
    """One request, from admission to the last byte of the response."""

    def __init__(self, gateway: Gateway, request: Request) -> None:
        self.gateway = gateway
        self.request = request
        self.metrics = gateway.metrics
        self.limit = gateway.settings.max_upload_bytes
        self._filename: str | None = None
        self._status: FileStatus = "disconnected"  # a stream's end, until it says otherwise
        self._admission: Admission | None = None

    async def run(self) -> Response:
        try:
            admission = self.gateway.admit_file(self.request)
        except Refusal as refusal:
            error = _refusal_error(refusal)
            self.metrics.file_job("refused", code=str(error.status))
            log.info("upload refused (HTTP %d): %s", refusal.status, refusal.reason)
            return _error_response(error)
        self._admission = admission
        streaming = False
        try:
            params, audio, duration = await self._read()
            started = time.perf_counter()
            transcript = await self.gateway.engine.transcribe_file(
                FileRequest(audio, self._filename, params.language, params.prompt, params.word_timestamps,
                            params.temperature)
            )
            if params.stream:
                streaming = True
                return _SseResponse(
                    self._stream(transcript), lambda: self._finish_stream(transcript, duration, started, admission)
                )
            return await self._respond(params, transcript, duration, started)
        except OpenAIError as error:
            status: FileStatus = "bad_request" if error.status in (400, 413) else "error"
            self.metrics.file_job(status, code=str(error.status))
            return _error_response(error)
        except EngineFailure as exc:
            failure = _engine_error(exc)
            self.metrics.file_job("bad_request" if failure.status == 400 else "error", code=str(failure.status))
            return _error_response(failure)
        finally:
            if not streaming:
                self.gateway.release_file(admission)

    async def _read(self) -> tuple[TranscriptionParams, Any, float]:
        """The valid params, the audio for the engine, and its duration; raises `OpenAIError`."""
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit + _FORM_SLACK:
            await self._drain(int(declared))
            raise self._too_large()
        try:
            form = await Request(self.request.scope, self._counting_receive()).form(
                max_files=1, max_fields=_MAX_FIELDS
            )
        except _TooLarge:
            raise self._too_large() from None
        except HTTPException as exc:  # malformed multipart, too many files or fields
            raise OpenAIError(400, f"the form could not be read: {exc.detail}", code="invalid_form") from None
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(form.close)
            upload = form.get("file")
            fields = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            files = [k for k, v in form.multi_items() if not isinstance(v, str) and k != "file"]
            if files:
                raise OpenAIError(400, f"unexpected file field {files[0]!r}", param=files[0], code="unknown_parameter")
            params = parse_form(fields, has_file=isinstance(upload, UploadFile))
            assert isinstance(upload, UploadFile)
            data = await upload.read()
            self._filename = upload.filename
        if len(data) > self.limit:
            raise self._too_large()
        engine = self.gateway.engine
        if not engine.capabilities.file_transcription:
            raise OpenAIError(400, f"the {engine.name} engine cannot transcribe files", code="unsupported")
        rate = engine.capabilities.sample_rate
        try:
            decoded = await asyncio.to_thread(decode_file, data, rate, self.gateway.settings.max_file_duration_s)
        except AudioTooLong as exc:
            raise OpenAIError(400, f"the audio is longer than the {exc.limit:g} s this server transcribes",
                              param="file", code="audio_too_long") from None
        except AudioDecodeError as exc:
            raise OpenAIError(400, f"Invalid file: {exc}", param="file", code="invalid_value") from None
        # Raw-audio engines (Deepgram) get the upload as it came; the decode above checked and measured it.
        audio: Any = data if engine.capabilities.raw_audio else decoded.pcm
        return params, audio, decoded.duration

    def _counting_receive(self) -> Receive:
        received = 0

        async def receive() -> Message:
            nonlocal received
            message = await self.request.receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit + _FORM_SLACK:
                    if message.get("more_body", False):  # after the last part, receive() waits for a disconnect
                        await self._drain(received)
                    raise _TooLarge
            return message

        return receive

    async def _drain(self, size: int) -> None:
        """Read and drop the rest of an oversized body of `size` bytes (known or so far), so the client reads the
        413 instead of a reset connection; nothing is kept, and past `_DRAIN_LIMIT` the connection is just closed."""
        if size > _DRAIN_LIMIT:
            return
        dropped = 0
        with contextlib.suppress(Exception):
            while dropped <= _DRAIN_LIMIT:
                message = await self.request.receive()
                dropped += len(message.get("body", b""))
                if message["type"] != "http.request" or not message.get("more_body"):
                    return

    def _too_large(self) -> OpenAIError:
        return OpenAIError(413, f"Maximum content size limit ({self.limit}) exceeded.", param="file",
                           code="file_too_large")

    async def _respond(
        self, params: TranscriptionParams, transcript: FileTranscript, duration: float, started: float
    ) -> Response:
        segments: list[FileSegment] = []
        try:
            async for segment in transcript.segments:
                segments.append(segment)
                if await self.request.is_disconnected():  # nobody to answer: stop the engine's work
                    self.metrics.file_job("disconnected", audio_s=duration)
                    self._meter(duration, "client_gone")
                    return Response(status_code=499)
        except Exception as exc:
            log.exception("file transcription failed")
            raise OpenAIError(500, f"the transcription failed: {exc}", type="server_error",
                              code="engine_error") from exc
        finally:
            await _aclose(transcript.segments)
        self.metrics.file_job("ok", audio_s=duration, decode_s=time.perf_counter() - started)
        self._meter(duration, "normal")
        body = render(params, segments, language=transcript.language, duration=duration)
        return Response(body, media_type=content_type(params.response_format))

    def _meter(self, duration: float, outcome: str) -> None:
        if self._admission is not None:
            self.gateway.meter_file(self._admission, "v1-audio-transcriptions", duration, outcome)

    async def _stream(self, transcript: FileTranscript) -> AsyncIterator[str]:
        sse = SseText()
        try:
            async for segment in transcript.segments:
                if (frame := sse.delta(segment)) is not None:
                    yield frame
            self._status = "ok"
            yield sse.done()
        except Exception as exc:
            log.exception("file transcription failed mid-stream")
            self._status = "error"
            yield SseText.error(OpenAIError(500, f"the transcription failed: {exc}", type="server_error",
                                            code="engine_error"))

    async def _finish_stream(
        self, transcript: FileTranscript, duration: float, started: float, admission: Admission
    ) -> None:
        """After the response (sent, failed or abandoned): stop the engine's work, free the job slot, count it."""
        await _aclose(transcript.segments)
        status = self._status
        decode_s = time.perf_counter() - started if status == "ok" else None
        self.metrics.file_job(status, code="500" if status == "error" else None, audio_s=duration, decode_s=decode_s)
        self._meter(duration, {"ok": "normal", "disconnected": "client_gone"}.get(status, "engine_error"))
        self.gateway.release_file(admission)  # last: once the slot is free, the job is counted


class _SseResponse(StreamingResponse):
    """Server-Sent Events whose generator is always closed, also when the client leaves between two events
    (Starlette then cancels the send, not the generator, and would leave it to the garbage collector)."""

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], Awaitable[None]]) -> None:
        super().__init__(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        self._events = events
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await _aclose(self._events)
            finally:
                await self._on_close()


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator early (its `finally` runs now); other iterators have nothing to close."""
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


def _error_response(error: OpenAIError) -> JSONResponse:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="voxrelay"'
    return JSONResponse(error.body(), error.status, headers=headers)


def _refusal_error(refusal: Refusal) -> OpenAIError:
    """Admission's decision in OpenAI's words."""
    if refusal.status == 401:
        return OpenAIError(401, refusal.reason, code="invalid_api_key")
    if refusal.status == 403:
        return OpenAIError(403, refusal.reason, type="permission_error", code="forbidden")
    if refusal.kind == "quota":
        return OpenAIError(429, refusal.reason, type="insufficient_quota", code="quota_exceeded",
                           retry_after=refusal.retry_after)
    if refusal.status == 429:
        return OpenAIError(429, refusal.reason, type="requests", code="rate_limit_exceeded",
                           retry_after=refusal.retry_after)
    return OpenAIError(refusal.status, refusal.reason, type="server_error", code=refusal.code,
                       retry_after=refusal.retry_after)


def _engine_error(exc: EngineFailure) -> OpenAIError:
    if exc.code in ("unsupported", "bad_audio"):
        return OpenAIError(400, str(exc), param="file" if exc.code == "bad_audio" else None, code=exc.code)
    if exc.code == "engine_unavailable":
        return OpenAIError(503, str(exc), type="server_error", code=exc.code, retry_after=5)
    return OpenAIError(502, str(exc), type="server_error", code=exc.code)
