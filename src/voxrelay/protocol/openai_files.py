"""OpenAI's file endpoint, `POST /v1/audio/transcriptions`, without I/O: form fields in, response bodies out.

`parse_form` turns the multipart form's text fields into `TranscriptionParams` or raises
`OpenAIError` (400, `param` naming the field). The renderers turn segments into each
`response_format`: json, text, verbose_json, srt, vtt; and `SseText` makes the Server-Sent
Events of `stream=true` (`transcript.text.delta` per segment, then `transcript.text.done`).
Errors use OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`.

Field policy (docs/openai.md): fields OpenAI documents but this gateway does not implement
(`chunking_strategy`, `include[]`, `known_speaker_*`, ...) are accepted and ignored, so an
existing client works unchanged; a field OpenAI does not know is refused with 400, as OpenAI
refuses unknown parameters, so a typo is reported instead of silently doing nothing.
Field names are also accepted without the `[]` of list fields (curl users write them so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from voxrelay.protocol.events import FileSegment

__all__ = [
    "RESPONSE_FORMATS",
    "OpenAIError",
    "ResponseFormat",
    "SseText",
    "TranscriptionParams",
    "content_type",
    "parse_form",
    "render",
]

ResponseFormat = Literal["json", "text", "verbose_json", "srt", "vtt"]
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "text", "verbose_json", "srt", "vtt")
_GRANULARITIES = ("word", "segment")
# OpenAI's own fields that are accepted and ignored here (see the module docstring).
_IGNORED = frozenset({
    "chunking_strategy", "include", "keywords", "known_speaker_names", "known_speaker_references", "languages",
})
_SCALARS = ("model", "language", "prompt", "response_format", "temperature", "stream")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_MAX_PROMPT_CHARS = 4096
# verbose_json's `language` is a name in OpenAI's answers ("english"); Whisper's names for common codes.
_LANGUAGE_NAMES = {
    "en": "english", "de": "german", "es": "spanish", "fr": "french", "it": "italian", "pt": "portuguese",
    "nl": "dutch", "pl": "polish", "ru": "russian", "uk": "ukrainian", "tr": "turkish", "ar": "arabic",
    "zh": "chinese", "ja": "japanese", "ko": "korean", "hi": "hindi", "sv": "swedish", "da": "danish",
    "no": "norwegian", "fi": "finnish", "cs": "czech", "el": "greek", "he": "hebrew", "id": "indonesian",
}


class OpenAIError(Exception):
    """An error in OpenAI's wire form: HTTP `status` and the `error` object of the body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",  # OpenAI's field name
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True, slots=True)
class TranscriptionParams:
    """A valid request's options. `model` is what the client named (never echoed as the engine's)."""

    model: str
    language: str | None = None
    prompt: str | None = None
    response_format: ResponseFormat = "json"
    word_timestamps: bool = False
    segment_timestamps: bool = True
    temperature: float | None = None
    stream: bool = False


def bad_request(message: str, param: str | None, code: str | None = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def parse_form(fields: Iterable[tuple[str, str]], *, has_file: bool) -> TranscriptionParams:
    """Validate the form's text fields (the `file` part is checked by the caller: `has_file`)."""
    scalars: dict[str, str] = {}
    granularities: list[str] = []
    for raw_name, value in fields:
        name = raw_name[:-2] if raw_name.endswith("[]") else raw_name
        name = name.split("[", 1)[0] if name.split("[", 1)[0] in _IGNORED else name  # chunking_strategy[type]
        if name == "timestamp_granularities":
            granularities.append(value)
        elif name in _IGNORED:
            continue
        elif name in _SCALARS:
            if name in scalars:
                raise bad_request(f"'{name}' is given more than once", name)
            scalars[name] = value
        elif name == "file":
            raise bad_request("'file' must be a file upload, not a text field", "file")
        else:
            raise bad_request(f"Unrecognized request argument supplied: {raw_name}", raw_name, "unknown_parameter")
    if not has_file:
        raise bad_request("you must provide a file", "file", "missing_required_parameter")
    model = scalars.get("model", "").strip()
    if not model:
        raise bad_request("you must provide a model parameter", "model", "missing_required_parameter")
    response_format = scalars.get("response_format", "json") or "json"
    if response_format not in RESPONSE_FORMATS:
        supported = ", ".join(RESPONSE_FORMATS)
        raise bad_request(f"response_format {response_format!r} is not supported; use one of {supported}",
                          "response_format")
    for granularity in granularities:
        if granularity not in _GRANULARITIES:
            raise bad_request(f"timestamp_granularities[] must be 'word' or 'segment', not {granularity!r}",
                              "timestamp_granularities[]")
    if granularities and response_format != "verbose_json":
        raise bad_request("timestamp_granularities[] needs response_format=verbose_json", "timestamp_granularities[]")
    language = scalars.get("language", "").strip().lower() or None
    if language is not None and not _LANGUAGE.match(language):
        raise bad_request(f"language must be an ISO-639-1 code such as 'en', not {language!r}", "language")
    prompt = scalars.get("prompt") or None
    if prompt is not None and len(prompt) > _MAX_PROMPT_CHARS:
        raise bad_request(f"prompt is longer than {_MAX_PROMPT_CHARS} characters", "prompt")
    return TranscriptionParams(
        model=model,
        language=language,
        prompt=prompt,
        response_format=response_format,
        word_timestamps="word" in granularities,
        segment_timestamps=not granularities or "segment" in granularities,
        temperature=_temperature(scalars.get("temperature")),
        stream=_boolean(scalars.get("stream"), "stream"),
    )


def _temperature(value: str | None) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        temperature = float(value)
    except ValueError:
        raise bad_request(f"temperature must be a number between 0 and 1, not {value!r}", "temperature") from None
    if not 0.0 <= temperature <= 1.0:
        raise bad_request(f"temperature must be between 0 and 1, not {temperature:g}", "temperature")
    return temperature


def _boolean(value: str | None, name: str) -> bool:
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0", ""):
        return False
    raise bad_request(f"{name} must be true or false, not {value!r}", name)


# Rendering.


def full_text(segments: Sequence[FileSegment]) -> str:
    """The transcript: the segments' texts, whitespace normalised, one space between segments (as `SseText`)."""
    return " ".join(piece for s in segments if (piece := " ".join(s.text.split())))


def content_type(response_format: ResponseFormat) -> str:
    if response_format in ("json", "verbose_json"):
        return "application/json"
    return "text/vtt; charset=utf-8" if response_format == "vtt" else "text/plain; charset=utf-8"


def render(
    params: TranscriptionParams, segments: Sequence[FileSegment], *, language: str, duration: float
) -> str:
    """The response body for `params.response_format` (not streamed)."""
    text = full_text(segments)
    seconds = round(duration, 3)
    fmt = params.response_format
    if fmt == "json":
        return json.dumps({"text": text, "usage": {"type": "duration", "seconds": seconds}})
    if fmt == "text":
        return text + "\n"
    if fmt == "srt":
        return "".join(f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n\n"
                       for i, s in enumerate(segments, start=1))
    if fmt == "vtt":
        cues = "".join(f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n\n" for s in segments)
        return "WEBVTT\n\n" + cues
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": _LANGUAGE_NAMES.get(language, language),
        "duration": seconds,
        "text": text,
    }
    if params.segment_timestamps:
        body["segments"] = [_verbose_segment(i, s) for i, s in enumerate(segments)]
    if params.word_timestamps:
        body["words"] = [{"word": w.punctuated_word or w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
                         for s in segments for w in s.words]
    body["usage"] = {"type": "duration", "seconds": seconds}
    return json.dumps(body)


def _verbose_segment(index: int, segment: FileSegment) -> dict[str, Any]:
    return {
        "id": index,
        "seek": int(segment.start * 100),  # Whisper's seek is in mel frames (10 ms); its window's start
        "start": round(segment.start, 3),
        "end": round(segment.end, 3),
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def _clock(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{ms:03d}"


class SseText:
    """The Server-Sent Events of `stream=true`: one delta per decoded segment, then done with the whole text.

    The deltas concatenate to exactly the done event's text.
    """

    def __init__(self) -> None:
        self._text = ""

    def delta(self, segment: FileSegment) -> str | None:
        """The event for a decoded segment; None when it adds no text."""
        piece = " ".join(segment.text.split())
        if not piece:
            return None
        delta = piece if not self._text else " " + piece
        self._text += delta
        return _event({"type": "transcript.text.delta", "delta": delta})

    def done(self) -> str:
        return _event({"type": "transcript.text.done", "text": self._text})

    @staticmethod
    def error(error: OpenAIError) -> str:
        """A failure after the stream began: the SDK raises `APIError` with this message."""
        return _event(error.body())


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"
