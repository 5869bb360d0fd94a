"""Messages of the `/stt-stream` client protocol, and their JSON form.

Every message is a small frozen dataclass; `parse_client_text` turns one text
frame into a client message (or raises `ProtocolError` with a stable code), and
`encode` turns a server message into the JSON text frame sent to the client.
This module does no I/O; see docs/protocol.md for the wire format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voxrelay.protocol import json_text
from voxrelay.protocol.dictation import DICTATION_ENDPOINTING_MS

__all__ = [
    "AudioFormat",
    "ClientMessage",
    "Configure",
    "ErrorCode",
    "ErrorMessage",
    "Finalize",
    "FinalTranscript",
    "InterimTranscript",
    "ProtocolError",
    "Ready",
    "ServerMessage",
    "SpeechStarted",
    "Stop",
    "Stopped",
    "StreamOptions",
    "UtteranceEnd",
    "Warning",
    "decode_server_text",
    "encode",
    "parse_client_text",
]

ErrorCode = Literal[
    "bad_request",
    "unsupported_audio",
    "engine_unavailable",
    "engine_error",
    "limit_exceeded",
    "quota_exceeded",
    "internal",
]

Encoding = Literal["linear16", "webm", "ogg", "mulaw", "alaw"]  # mulaw/alaw: G.711, one byte a sample


class ProtocolError(Exception):
    """A client did something the protocol forbids; `code` is stable, `message` is for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


# Client -> server. Configure is validated with pydantic because it carries user
# input with ranges; the control messages are plain dataclasses.


class AudioFormat(BaseModel):
    """What the binary frames contain. Containers carry their own rate and channels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    encoding: Encoding = "linear16"
    sample_rate: int = Field(16000, ge=8000, le=48000)
    channels: int = Field(1, ge=1, le=2)

    @property
    def is_container(self) -> bool:
        return self.encoding in ("webm", "ogg")

    @property
    def bytes_per_second(self) -> int | None:
        """Byte rate of raw PCM; None for compressed containers."""
        width = 1 if self.encoding in ("mulaw", "alaw") else 2
        return None if self.is_container else self.sample_rate * self.channels * width


class StreamOptions(BaseModel):
    """Recognition options a client may set in `configure`; None means the engine's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str | None = Field(None, max_length=16)
    model: str | None = Field(None, max_length=128)
    interim_results: bool = True
    endpointing: int = Field(300, ge=10, le=10000, description="ms of silence that ends an utterance")
    utterance_end_ms: int | None = Field(None, ge=500, le=10000)
    vad_events: bool = True
    punctuate: bool = True
    smart_format: bool = False
    keyterms: tuple[str, ...] = Field((), max_length=100)
    dictation: bool = False  # spoken "comma", "period", "new line"... become punctuation (protocol.dictation)

    @model_validator(mode="before")
    @classmethod
    def _dictation_waits_longer_by_default(cls, data: Any) -> Any:
        # A client that names no endpointing gets the dictation default (protocol.dictation explains why).
        if isinstance(data, dict) and data.get("dictation") is True and "endpointing" not in data:
            return {**data, "endpointing": DICTATION_ENDPOINTING_MS}
        return data

    @field_validator("endpointing", mode="before")
    @classmethod
    def _endpointing_false_means_never(cls, value: Any) -> Any:
        # Deepgram accepts endpointing=false; here it means "only finalize/stop end an utterance".
        return 10000 if value is False else value

    @model_validator(mode="after")
    def _dictation_needs_punctuation(self) -> StreamOptions:
        # As at Deepgram, dictation is a kind of punctuation; asked for without it, it would silently do nothing.
        if self.dictation and not (self.punctuate or self.smart_format):
            raise ValueError("dictation requires punctuate (or smart_format) to be true")
        return self

    @field_validator("keyterms")
    @classmethod
    def _short_keyterms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(len(term) > 100 for term in value):
            raise ValueError("each keyterm must be at most 100 characters")
        return value


class Configure(BaseModel):
    """`{"action":"configure", "audio_format": {...}, ...options}`; optional, first frame only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Literal["configure"] = "configure"
    audio_format: AudioFormat = AudioFormat()
    options: StreamOptions = StreamOptions()

    @model_validator(mode="before")
    @classmethod
    def _options_inline(cls, data: Any) -> Any:
        # The wire form puts options beside audio_format; gather them into `options`.
        if isinstance(data, dict) and "options" not in data:
            inline = {k: v for k, v in data.items() if k not in ("action", "audio_format")}
            data = {k: v for k, v in data.items() if k in ("action", "audio_format")}
            data["options"] = inline
        return data


@dataclass(frozen=True, slots=True)
class Finalize:
    """Everything heard so far comes back as final; the session goes on."""


@dataclass(frozen=True, slots=True)
class Stop:
    """End of stream: flush every final, answer `stopped`, close 1000."""


ClientMessage = Configure | Finalize | Stop


def parse_client_text(text: str) -> ClientMessage:
    """Parse one client text frame.

    Raises:
        ProtocolError: `bad_request` for malformed JSON, unknown actions or bad options;
            `unsupported_audio` for an audio format voxrelay cannot take.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_request", f"text frame is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_request", "text frame must be a JSON object with an \"action\"")
    action = data.get("action")
    if action == "finalize":
        return Finalize()
    if action == "stop":
        return Stop()
    if action != "configure":
        raise ProtocolError(
            "bad_request",
            f"unknown action {action!r}; expected \"configure\", \"finalize\" or \"stop\"",
        )
    try:
        return Configure.model_validate(data)
    except ValidationError as exc:
        raise _configure_error(exc) from None


def _configure_error(exc: ValidationError) -> ProtocolError:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if part != "options")
    code: ErrorCode = "unsupported_audio" if first["loc"][:1] == ("audio_format",) else "bad_request"
    if not where:  # a rule across options (dictation needs punctuate): its message names them
        return ProtocolError(code, f"invalid configure: {first['msg'].removeprefix('Value error, ')}")
    return ProtocolError(code, f"invalid configure: {where}: {first['msg']}")


# Server -> client.


@dataclass(frozen=True, slots=True)
class Ready:
    session_id: str
    engine: str
    type: Literal["ready"] = "ready"


@dataclass(frozen=True, slots=True)
class InterimTranscript:
    """Provisional text of the current segment; replaces the previous interim."""

    transcript: str
    type: Literal["interim_transcript"] = "interim_transcript"


@dataclass(frozen=True, slots=True)
class FinalTranscript:
    """Committed text that never changes; `start`/`end` in seconds of stream audio."""

    transcript: str
    start: float
    end: float
    speech_final: bool
    type: Literal["final_transcript"] = "final_transcript"


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    timestamp: float
    type: Literal["speech_started"] = "speech_started"


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    last_word_end: float
    type: Literal["utterance_end"] = "utterance_end"


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    code: ErrorCode
    message: str
    type: Literal["error"] = "error"


@dataclass(frozen=True, slots=True)
class Warning:
    """Something the client should know that does not end the session (e.g. `draining`)."""

    code: str
    message: str
    type: Literal["warning"] = "warning"


@dataclass(frozen=True, slots=True)
class Stopped:
    type: Literal["stopped"] = "stopped"


ServerMessage = (
    Ready | InterimTranscript | FinalTranscript | SpeechStarted | UtteranceEnd | ErrorMessage | Warning | Stopped
)


_FIELDS: dict[type, tuple[str, ...]] = {}  # per message class: its fields but `type`, in order


def encode(message: ServerMessage) -> str:
    """The JSON text frame for a server message, `type` first."""
    fields = _FIELDS.get(type(message))
    if fields is None:
        fields = _FIELDS[type(message)] = tuple(name for name in message.__dataclass_fields__ if name != "type")
    body: dict[str, Any] = {"type": message.type}
    for name in fields:
        value = getattr(message, name)
        body[name] = round(value, 3) if isinstance(value, float) else value
    return json_text.dumps(body)  # compact JSON by orjson (protocol/json_text.py)



_SERVER_TYPES: dict[str, type[ServerMessage]] = {
    str(cls.__dataclass_fields__["type"].default): cls  # slots: the class attribute is a descriptor, not the value
    for cls in (Ready, InterimTranscript, FinalTranscript, SpeechStarted, UtteranceEnd, ErrorMessage, Warning, Stopped)
}


def decode_server_text(text: str) -> ServerMessage | None:
    """The server message in one text frame (the client's side of `encode`).

    None for a message type this version does not know, so a client keeps working when a
    newer gateway adds one; `ProtocolError` for a frame that is not a server message at all.
    Fields this version does not know are dropped for the same reason.
    """
    try:
        body = json.loads(text)
        kind = _SERVER_TYPES.get(body["type"])
    except (ValueError, KeyError, TypeError):
        raise ProtocolError("bad_request", "the server sent a frame that is not a JSON message") from None
    if kind is None:
        return None
    fields = {name: body[name] for name in kind.__dataclass_fields__ if name != "type" and name in body}
    try:
        return kind(**fields)
    except TypeError:
        raise ProtocolError("bad_request", f"the server's {body['type']!r} message lacks a field") from None
