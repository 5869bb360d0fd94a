"""Deepgram's pre-recorded API (`POST /v1/listen`): query and body in, Deepgram's JSON out. Sans-I/O.

Used by `voxrelay.gateway.listen_prerecorded`, in this order:
    params = parse_prerecorded_params(query_items)      # or ListenRequestError -> HTTP 400
    check_body(content_type, body)                        # a JSON {"url": ...} body -> 400: nothing is fetched
    ... the engine transcribes the bytes into segments ...
    body = prerecorded_response(meta, params, segments)   # Deepgram's response shape
Errors are `ListenRequestError`s, whose `body(request_id)` is Deepgram's error shape
(`err_code`, `err_msg`, `request_id`), as on the Live endpoint.

Segments are `FileSegment`s (protocol.events; the engines return them):
`results.channels[0].alternatives[0]` joins them, `results.utterances` (when `utterances=true`)
has one per segment, and `paragraphs` (when `paragraphs=true`) groups them at pauses.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from voxrelay.protocol.deepgram_messages import ModelInfo
from voxrelay.protocol.deepgram_params import (
    DICTATION_NEEDS_PUNCTUATE,
    ListenRequestError,
    ParamWarning,
    bad_request,
    bool_param,
    int_param,
    language_param,
    sort_params,
)
from voxrelay.protocol.events import FileSegment, Word

__all__ = [
    "PrerecordedParams",
    "ResponseMeta",
    "bad_audio",
    "check_body",
    "prerecorded_response",
    "parse_prerecorded_params",
]

# Features whose absence would silently change what the caller gets: refused (400), as on the Live endpoint.
_REFUSED: dict[str, str] = {
    "callback": "callbacks (voxrelay answers in the response; it calls no URL)",
    "diarize": "speaker diarization",
    "diarize_model": "speaker diarization",
    "multichannel": "per-channel transcription",
    "redact": "redaction",
    "replace": "term replacement",
    "search": "search",
    "detect_entities": "entity detection",
    "summarize": "summaries",
    "topics": "topic detection",
    "custom_topic": "topic detection",
    "intents": "intent recognition",
    "custom_intent": "intent recognition",
    "sentiment": "sentiment analysis",
}
_SUPPORTED = {
    "model", "language", "detect_language", "punctuate", "smart_format", "utterances", "paragraphs", "dictation",
    "encoding", "sample_rate", "channels",
}
_PUNCTUATION = re.compile(r"[^\w\s'-]")
# A new paragraph starts after a pause this long between segments (Deepgram does not document its rule).
PARAGRAPH_PAUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class PrerecordedParams:
    """A `POST /v1/listen` request's query, validated.

    `language` None means detect it (no `language`, `language=multi`, or `detect_language=true`).
    `prompt` is the keyterms joined (Deepgram's vocabulary prompting, the nearest thing to a prompt).
    `encoding` is set only for raw linear16 bodies (`sample_rate`, `channels` then apply); None =
    a container or file the gateway decodes (wav, mp3, ogg, webm, flac, m4a...).
    """

    model: str | None = None
    language: str | None = None
    punctuate: bool = False
    smart_format: bool = False
    utterances: bool = False
    paragraphs: bool = False
    dictation: bool = False
    prompt: str | None = None
    encoding: Literal["linear16"] | None = None
    sample_rate: int | None = None
    channels: int = 1
    warnings: tuple[ParamWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponseMeta:
    """What `metadata` says besides the transcript: ids, the upload's hash, the model."""

    request_id: str
    created: str  # ISO 8601, UTC
    sha256: str
    duration: float
    model: ModelInfo
    language: str | None = None  # the language the engine transcribed, when it detected it


def bad_audio(detail: str = "corrupt or unsupported data") -> ListenRequestError:
    """The 400 Deepgram answers for a body it cannot decode."""
    return bad_request(f"Bad Request: failed to process audio: {detail}")


def parse_prerecorded_params(items: Iterable[tuple[str, str]]) -> PrerecordedParams:
    """Validate a pre-recorded request's query parameters (repeated keys allowed: `keyterm`).

    Raises:
        ListenRequestError: 400 for a bad value or a refused feature (diarize, callback, summarize...).
    """
    single, keyterms, warnings = sort_params(items, supported=_SUPPORTED, refused=_REFUSED)

    encoding = single.get("encoding", "").strip().lower() or None
    sample_rate: int | None = None
    channels = 1
    if encoding is not None:
        if encoding != "linear16":
            raise bad_request(
                f"Unsupported encoding {encoding!r}: send raw audio as linear16 (with sample_rate), "
                "or send a file (wav, mp3, ogg, webm, flac, m4a) without `encoding`."
            )
        if "sample_rate" not in single:
            raise bad_request("Missing query parameter `sample_rate`: it is required with encoding=linear16.")
        sample_rate = int_param("sample_rate", single["sample_rate"], 8000, 48000)
        channels = int_param("channels", single.get("channels", "1"), 1, 8)

    language = language_param(single.get("language"))
    if "detect_language" in single and bool_param("detect_language", single["detect_language"]):
        language = None

    smart_format = bool_param("smart_format", single["smart_format"]) if "smart_format" in single else False
    punctuate = (bool_param("punctuate", single["punctuate"]) if "punctuate" in single else False) or smart_format
    dictation = bool_param("dictation", single["dictation"]) if "dictation" in single else False
    if dictation and not punctuate:
        raise bad_request(DICTATION_NEEDS_PUNCTUATE)
    model = single.get("model", "").strip() or None
    if model is not None and len(model) > 128:
        raise bad_request("Invalid query parameter `model`: longer than 128 characters.")
    return PrerecordedParams(
        model=model,
        language=language,
        punctuate=punctuate,
        smart_format=smart_format,
        utterances=bool_param("utterances", single["utterances"]) if "utterances" in single else False,
        paragraphs=bool_param("paragraphs", single["paragraphs"]) if "paragraphs" in single else False,
        dictation=dictation,
        prompt=", ".join(keyterms) if keyterms else None,
        encoding="linear16" if encoding else None,
        sample_rate=sample_rate,
        channels=channels,
        warnings=tuple(warnings),
    )


def check_body(content_type: str | None, body: bytes) -> None:
    """Refuse a body that is no audio to transcribe here.

    Deepgram also takes `{"url": "https://..."}` (with `Content-Type: application/json`) and fetches
    it; voxrelay fetches nothing (no server-side requests to addresses a client names), so that is
    a 400 that says what to send instead.

    Raises:
        ListenRequestError: 400 for a JSON body or an empty one.
    """
    if (content_type or "").split(";")[0].strip().lower() == "application/json":
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise bad_request("Bad Request: the JSON body is not valid JSON.") from None
        if isinstance(data, dict) and "url" in data:
            raise bad_request(
                "Bad Request: voxrelay does not fetch remote URLs; send the audio file itself as the request "
                "body (Content-Type: application/octet-stream or audio/*)."
            )
        raise bad_request(
            'Bad Request: a JSON body must be {"url": ...}, which voxrelay does not fetch; send the audio.'
        )
    if not body:
        raise bad_audio("the request body is empty")


# The response.


def _confidence(segments: Sequence[FileSegment]) -> float:
    words = [w for s in segments for w in s.words]
    if words:
        return sum(w.confidence for w in words) / len(words)
    if not segments:
        return 0.0
    # No per-word confidence: the decoder's mean token probability (0.0 logprob = an engine without one).
    return min(1.0, sum(math.exp(s.avg_logprob) for s in segments) / len(segments))


def _text(segment: FileSegment, punctuate: bool) -> str:
    if punctuate:
        return segment.text.strip()
    if segment.words:
        return " ".join(w.word for w in segment.words)
    return " ".join(_PUNCTUATION.sub("", segment.text).lower().split())


def _words(words: Iterable[Word], punctuate: bool) -> list[dict[str, Any]]:
    out = []
    for w in words:
        item: dict[str, Any] = {
            "word": w.word,
            "start": round(w.start, 3),
            "end": round(w.end, 3),
            "confidence": round(w.confidence, 4),
        }
        if punctuate:
            item["punctuated_word"] = w.punctuated_word
        out.append(item)
    return out


def _paragraphs(segments: Sequence[FileSegment], punctuate: bool) -> dict[str, Any]:
    groups: list[list[FileSegment]] = []
    for segment in segments:
        if not groups or segment.start - groups[-1][-1].end >= PARAGRAPH_PAUSE_S:
            groups.append([])
        groups[-1].append(segment)
    paragraphs = [
        {
            "sentences": [
                {"text": _text(s, punctuate), "start": round(s.start, 3), "end": round(s.end, 3)} for s in group
            ],
            "num_words": sum(len(_text(s, punctuate).split()) for s in group),
            "start": round(group[0].start, 3),
            "end": round(group[-1].end, 3),
        }
        for group in groups
    ]
    # Deepgram's paragraphs.transcript: each paragraph on its own lines.
    transcript = "".join("\n" + " ".join(_text(s, punctuate) for s in group) + "\n" for group in groups)
    return {"transcript": transcript, "paragraphs": paragraphs}


def prerecorded_response(
    meta: ResponseMeta, params: PrerecordedParams, segments: Sequence[FileSegment]
) -> dict[str, Any]:
    """Deepgram's pre-recorded response for the segments an engine returned (in order).

    One channel (a stereo upload is transcribed as its mix); the transcript joins the segments;
    `words` are always there (as at Deepgram), empty when the engine gave no word timings.
    """
    spoken = [s for s in segments if _text(s, params.punctuate)]
    alternative: dict[str, Any] = {
        "transcript": " ".join(_text(s, params.punctuate) for s in spoken),
        "confidence": round(_confidence(spoken), 4),
        "words": _words((w for s in spoken for w in s.words), params.punctuate),
    }
    if params.paragraphs:
        alternative["paragraphs"] = _paragraphs(spoken, params.punctuate)
    channel: dict[str, Any] = {"alternatives": [alternative]}
    if params.language is None and meta.language:
        channel["detected_language"] = meta.language
    results: dict[str, Any] = {"channels": [channel]}
    if params.utterances:
        results["utterances"] = [
            {
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "confidence": round(_confidence([s]), 4),
                "channel": 0,
                "transcript": _text(s, params.punctuate),
                "words": _words(s.words, params.punctuate),
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{meta.request_id}/{i}")),
            }
            for i, s in enumerate(spoken)
        ]
    metadata: dict[str, Any] = {
        "transaction_key": "deprecated",
        "request_id": meta.request_id,
        "sha256": meta.sha256,
        "created": meta.created,
        "duration": round(meta.duration, 3),
        "channels": 1,
        "models": [meta.model.uuid],
        "model_info": {meta.model.uuid: meta.model.to_dict()},
    }
    if params.warnings:
        metadata["warnings"] = [
            {"parameter": w.parameter, "type": w.type, "message": w.message} for w in params.warnings
        ]
    return {"metadata": metadata, "results": results}
