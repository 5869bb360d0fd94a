"""Whole-file transcription with Deepgram's pre-recorded API (`POST /v1/listen`) through deepgram-sdk.

`DeepgramEngine.transcribe_file` delegates here: the upload's bytes go as they came (Deepgram
decodes the container itself) with `client.listen.v1.media.transcribe_file`, asking for
punctuation, smart formatting and utterances so that segments come back with times. The
response is read as JSON (`transcript_from_json`, pure), not through the SDK's models, so the
mapping does not depend on which fields a release of the SDK declares.

Request fields: `language` is sent as is; None asks Deepgram to detect it (`detect_language`),
as Whisper does. `prompt` and `temperature` have no Deepgram equivalent and are ignored
(Deepgram's `keyterm` boosts single terms; a prompt is prose). `word_timings` keeps the
words Deepgram always returns.

Failures are `EngineFailure`s with a code the gateway maps to a status, and a message that has
passed through the engine's `scrub` (the API key never reaches a client or a log):
    bad_audio           Deepgram could not decode the file (its 400 "failed to process audio"); the
                        local engine's code for the same, so every file endpoint maps both alike
    bad_request         Deepgram refused the options (another 400)
    limit_exceeded      402/429: quota or rate limit
    engine_unavailable  401/403 (the server's key), 5xx, a timeout, or Deepgram unreachable
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx
from deepgram.core.api_error import ApiError

from voxrelay.engines.base import EngineFailure, Word
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript

if TYPE_CHECKING:
    from deepgram import AsyncDeepgramClient

__all__ = ["failure_from_status", "transcribe_file", "transcript_from_json"]

log = logging.getLogger(__name__)

Scrub = Callable[[str], str]


async def transcribe_file(
    client: AsyncDeepgramClient,
    request: FileRequest,
    *,
    model: str,
    timeout_s: float,
    max_retries: int,
    scrub: Scrub,
) -> FileTranscript:
    """Send one file to Deepgram and map its answer; raises `EngineFailure` (see the module doc)."""
    if not isinstance(request.audio, bytes):
        raise EngineFailure("the deepgram engine takes the uploaded file's bytes, not decoded PCM", code="bad_request")
    if request.prompt:
        log.debug("deepgram file: the prompt has no Deepgram equivalent and is not sent")
    options: dict[str, Any] = {"model": model, "punctuate": True, "smart_format": True, "utterances": True}
    if request.dictation:  # Deepgram converts the commands itself
        options["dictation"] = True
    if request.language:
        options["language"] = request.language
    else:
        options["detect_language"] = True
    try:
        response = await client.listen.v1.media.transcribe_file(
            request=request.audio,
            request_options={"timeout": timeout_s, "max_retries": max_retries},
            **options,
        )
    except ApiError as exc:
        raise failure_from_status(exc.status_code, exc.body, scrub) from None
    except httpx.TimeoutException:
        raise EngineFailure(f"Deepgram did not answer within {timeout_s:g} s; try again later") from None
    except (httpx.HTTPError, OSError) as exc:
        log.warning("cannot reach Deepgram for a file: %s", scrub(repr(exc)))
        raise EngineFailure(f"cannot reach Deepgram: {scrub(str(exc)) or type(exc).__name__}") from None
    data = response.model_dump(mode="json") if hasattr(response, "model_dump") else response
    if not isinstance(data, dict) or "results" not in data:
        # ListenV1AcceptedResponse: only a request_id, as for a callback (never asked for here).
        raise EngineFailure("Deepgram answered without a transcript (an accepted-for-callback response)")
    try:
        return transcript_from_json(data, request)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise EngineFailure(scrub(f"Deepgram's response is not in the expected shape: {exc!r}")) from None


def failure_from_status(status: int | None, body: Any, scrub: Scrub) -> EngineFailure:
    """The `EngineFailure` for an HTTP error answer from Deepgram (`body`: its JSON, or text)."""
    detail = ""
    if isinstance(body, dict):
        detail = str(body.get("err_msg") or body.get("message") or body.get("err_code") or "")
    elif isinstance(body, str):
        detail = body
    detail = scrub(detail.strip())[:300]
    said = f": {detail}" if detail else ""
    if status == 400:
        if "audio" in detail.lower():
            return EngineFailure(f"Deepgram could not decode the file (HTTP 400){said}", code="bad_audio")
        return EngineFailure(f"Deepgram refused the request (HTTP 400){said}", code="bad_request")
    if status in (401, 403):
        return EngineFailure(
            f"Deepgram refused the server's API key (HTTP {status}); check DEEPGRAM_API_KEY", code="engine_unavailable"
        )
    if status in (402, 429):
        return EngineFailure(f"Deepgram refused the file: limit or quota reached (HTTP {status}){said}",
                             code="limit_exceeded")
    if status == 413:
        return EngineFailure(f"Deepgram refused the file as too large (HTTP 413){said}", code="bad_request")
    return EngineFailure(f"Deepgram failed to transcribe the file (HTTP {status}){said}", code="engine_unavailable")


def transcript_from_json(data: dict[str, Any], request: FileRequest) -> FileTranscript:
    """Deepgram's pre-recorded response (JSON) -> a `FileTranscript` (pure).

    Segments come from `results.utterances`; without them, from the paragraphs' sentences; without
    those, the whole transcript is one segment.
    """
    metadata = data.get("metadata") or {}
    channel = data["results"]["channels"][0]
    alternative = (channel.get("alternatives") or [{}])[0]
    duration = float(metadata.get("duration") or 0.0)
    # Deepgram transcribes English when it is given no language and detects none: say so rather than "".
    language = request.language or channel.get("detected_language") or "en"
    segments = _segments(data["results"], alternative, duration, request.word_timings)
    return FileTranscript(language=language, duration=duration, segments=_iterate(segments))


def _segments(
    results: dict[str, Any], alternative: dict[str, Any], duration: float, word_timings: bool
) -> list[FileSegment]:
    utterances = results.get("utterances")
    if utterances:
        return [
            FileSegment(
                id=i,
                start=float(u.get("start") or 0.0),
                end=float(u.get("end") or 0.0),
                text=str(u.get("transcript") or ""),
                words=_words(u.get("words")) if word_timings else (),
            )
            for i, u in enumerate(utterances)
            if (u.get("transcript") or "").strip()
        ]
    words = _words(alternative.get("words"))
    sentences = [
        sentence
        for paragraph in ((alternative.get("paragraphs") or {}).get("paragraphs") or [])
        for sentence in (paragraph.get("sentences") or [])
        if (sentence.get("text") or "").strip()
    ]
    if sentences:
        out = []
        for i, s in enumerate(sentences):
            start, end = float(s.get("start") or 0.0), float(s.get("end") or 0.0)
            inside = tuple(w for w in words if start <= w.start < end) if word_timings else ()
            out.append(FileSegment(id=i, start=start, end=end, text=str(s["text"]), words=inside))
        return out
    transcript = str(alternative.get("transcript") or "").strip()
    if not transcript:
        return []
    start = words[0].start if words else 0.0
    end = words[-1].end if words else duration
    return [FileSegment(id=0, start=start, end=end, text=transcript, words=words if word_timings else ())]


def _words(items: Any) -> tuple[Word, ...]:
    return tuple(
        Word(
            str(w.get("word") or ""),
            float(w.get("start") or 0.0),
            float(w.get("end") or 0.0),
            float(w.get("confidence") or 0.0),
            str(w.get("punctuated_word") or w.get("word") or ""),
        )
        for w in (items or [])
    )


async def _iterate(segments: list[FileSegment]) -> AsyncIterator[FileSegment]:
    # The whole answer is already here: Deepgram's pre-recorded API returns every segment at once.
    for segment in segments:
        yield segment
