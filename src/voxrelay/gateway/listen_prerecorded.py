"""`POST /v1/listen`: Deepgram's pre-recorded API, answered by this gateway's engine.

The same path as the Live WebSocket (`listen_v1.py`); FastAPI routes the HTTP POST here.
Deepgram SDK pre-recorded clients (`client.listen.v1.media.transcribe_file`) work against it
unchanged: point their base URL at the gateway. In order: the query is checked (400, as
Deepgram does), the one admission path decides (`Authorization: Token KEY`, Deepgram's form;
refusals in Deepgram's words, shared with the Live endpoint; the file-job cap, 429, shared with
the OpenAI file endpoint), the body is read up to `max_upload_bytes` (413) and decoded (400 if
it is no audio or longer than `max_file_duration_s`), then `engine.transcribe_file` answers and
`protocol.deepgram_prerecorded` writes Deepgram's response. Engines that take PCM get the file
decoded here (in a worker thread); engines that take raw audio (Deepgram) get the bytes.
Errors are Deepgram's error shape: `{"err_code", "err_msg", "request_id"}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from datetime import datetime, timezone

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxrelay import __version__
from voxrelay.audio.file import AudioDecodeError, AudioTooLong, decode_file
from voxrelay.audio.pcm import decode_linear16, linear16_wav
from voxrelay.engines.base import Engine, EngineFailure
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript
from voxrelay.gateway.listen_v1 import listen_error
from voxrelay.gateway.state import Gateway
from voxrelay.ops.metrics import FileStatus
from voxrelay.protocol.deepgram_messages import ModelInfo
from voxrelay.protocol.deepgram_params import ListenRequestError
from voxrelay.protocol.deepgram_prerecorded import (
    PrerecordedParams,
    ResponseMeta,
    bad_audio,
    check_body,
    parse_prerecorded_params,
    prerecorded_response,
)
from voxrelay.security.admission import Refusal
from voxrelay.tasks import cancel_and_wait

__all__ = ["create_router", "serve"]

log = logging.getLogger("voxrelay.listen")

_ENDPOINT = "v1-listen"  # the metrics label, as the Live endpoint's

# An engine's `EngineFailure.code` -> Deepgram's status and err_code.
_FAILURES: dict[str, tuple[int, str]] = {
    "bad_request": (400, "Bad Request"),
    "limit_exceeded": (429, "TOO_MANY_REQUESTS"),
    "engine_unavailable": (503, "SERVICE_UNAVAILABLE"),
    "unsupported": (501, "NOT_IMPLEMENTED"),
}


def create_router(gateway: Gateway) -> APIRouter:
    """The `POST /v1/listen` route, sharing the gateway's engine, admission and limits."""
    router = APIRouter()

    @router.post("/v1/listen")
    async def listen_prerecorded(request: Request) -> JSONResponse:
        return await serve(request, gateway)

    return router


async def serve(request: Request, gateway: Gateway) -> JSONResponse:
    """One pre-recorded request: query, admission (with the file-job cap), body, engine, Deepgram's JSON."""
    request_id = str(uuid.uuid4())
    metrics = gateway.metrics
    try:
        params = parse_prerecorded_params(request.query_params.multi_items())
    except ListenRequestError as exc:
        metrics.file_job("bad_request", code=str(exc.status), endpoint=_ENDPOINT)
        return _error(request_id, exc)
    try:
        admission = gateway.admit_file(request, "deepgram")
    except Refusal as refusal:
        error = listen_error(refusal)
        metrics.file_job("refused", code=str(error.status), endpoint=_ENDPOINT)
        return _error(request_id, error, refusal.retry_after)
    started = time.perf_counter()
    try:
        response, audio_s = await _transcribe(request, gateway, params, request_id)
    except ListenRequestError as exc:
        if exc.status == 499:
            metrics.file_job("disconnected", endpoint=_ENDPOINT)
        else:
            status: FileStatus = "bad_request" if exc.status in (400, 413) else "error"
            metrics.file_job(status, code=str(exc.status), endpoint=_ENDPOINT)
        return _error(request_id, exc)
    finally:
        gateway.release_file(admission)
    metrics.file_job("ok", audio_s=audio_s, decode_s=time.perf_counter() - started, endpoint=_ENDPOINT)
    gateway.meter_file(admission, "v1-listen-prerecorded", audio_s)
    return response


async def _transcribe(
    request: Request, gateway: Gateway, params: PrerecordedParams, request_id: str
) -> tuple[JSONResponse, float]:
    """The answer and the seconds of audio it covers; raises `ListenRequestError` for every refusal."""
    engine = gateway.engine
    if not engine.capabilities.file_transcription:
        message = f"the {engine.name} engine cannot transcribe files; use the Live API (WebSocket)"
        raise ListenRequestError(501, "NOT_IMPLEMENTED", message)
    body = await _read_body(request, gateway.settings.max_upload_bytes)
    check_body(request.headers.get("content-type"), body)
    capabilities, max_s = engine.capabilities, gateway.settings.max_file_duration_s
    audio, sha256, audio_s = await asyncio.to_thread(
        _prepare, body, params, capabilities.raw_audio, capabilities.sample_rate, max_s
    )
    log.info("listen %s: file of %d bytes, %.1f s", request_id, len(body), audio_s)
    request_for_engine = FileRequest(
        audio, language=params.language, prompt=params.prompt, word_timings=True, dictation=params.dictation
    )
    transcribing = asyncio.create_task(_run_engine(engine, request_for_engine))
    gone = asyncio.create_task(_client_gone(request))
    try:
        await asyncio.wait({transcribing, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # A client that went away stops the work (closing the segments releases the engine's undone
        # windows), so an abandoned upload neither holds a job slot nor keeps the decoder busy.
        await cancel_and_wait([gone, transcribing] if not transcribing.done() else [gone])
    if transcribing.cancelled():
        log.info("listen %s: the client went away; transcription stopped", request_id)
        raise ListenRequestError(499, "CLIENT_CLOSED_REQUEST", "The client closed the connection.")
    try:
        transcript, segments = transcribing.result()
    except EngineFailure as exc:
        log.warning("listen %s: the engine failed (%s): %s", request_id, exc.code, exc)
        if exc.code == "bad_audio":
            raise bad_audio(str(exc)) from None  # Deepgram's wording, which Deepgram clients (ours too) read
        status, err_code = _FAILURES.get(exc.code, (500, "INTERNAL_SERVER_ERROR"))
        raise ListenRequestError(status, err_code, str(exc)) from None
    created = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    meta = ResponseMeta(
        request_id, created, sha256, transcript.duration,
        ModelInfo(engine.model_name, __version__, engine.name), language=transcript.language,
    )
    body_json = prerecorded_response(meta, params, segments)
    return JSONResponse(body_json, headers={"dg-request-id": request_id}), audio_s


async def _run_engine(engine: Engine, request: FileRequest) -> tuple[FileTranscript, list[FileSegment]]:
    transcript = await engine.transcribe_file(request)
    try:
        return transcript, [segment async for segment in transcript.segments]
    finally:
        with contextlib.suppress(Exception):
            await transcript.segments.aclose()  # type: ignore[attr-defined]  # async generators have it


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (call after the body is read: ASGI then sends only that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to pass `limit` (never buffered past it)."""
    too_big = ListenRequestError(413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {limit} bytes.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


def _prepare(
    body: bytes, params: PrerecordedParams, raw_audio: bool, rate: int, max_s: float
) -> tuple[bytes | np.ndarray, str, float]:
    """What the engine takes, the body's sha256 and its seconds of audio (in a worker thread: all three block).

    Every upload is decoded, also for engines that take the bytes (Deepgram): so that audio that is
    not audio, or longer than `max_file_duration_s`, is refused here as on the OpenAI endpoint,
    before an upstream is paid for it.
    """
    sha256 = hashlib.sha256(body).hexdigest()
    try:
        if params.encoding == "linear16" and params.sample_rate is not None:
            pcm = decode_linear16(body, params.sample_rate, params.channels, rate)
            if len(pcm) > max_s * rate:
                raise AudioTooLong(len(pcm) / rate, max_s)
            # Engines that read files take the format from a header, not from a query parameter.
            wav = linear16_wav(body, params.sample_rate, params.channels) if raw_audio else None
            return (wav if wav is not None else pcm), sha256, len(pcm) / rate
        decoded = decode_file(body, rate, max_s)
        return (body if raw_audio else decoded.pcm), sha256, decoded.duration
    except AudioTooLong as exc:
        raise ListenRequestError(
            400, "Bad Request", f"Bad Request: the audio is longer than the {exc.limit:g} s this server transcribes."
        ) from None
    except AudioDecodeError as exc:
        raise bad_audio(str(exc)) from None


def _error(request_id: str, exc: ListenRequestError, retry_after: int | None = None) -> JSONResponse:
    log.info("listen %s refused (HTTP %d): %s", request_id, exc.status, exc.message)
    headers = {"dg-error": exc.message.encode("ascii", "replace").decode(), "dg-request-id": request_id}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(exc.body(request_id), exc.status, headers=headers)
