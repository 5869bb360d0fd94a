"""OpenAI Realtime transcription wire format: client events in, server events out. Pure, no I/O.

The shapes are those of the `openai` SDK's GA types (`openai.types.realtime`, SDK 3.57): client
events are validated here with pydantic (the SDK's TypedDicts are not enforced on the client
side, so anything may arrive); server events are plain dicts built to pass the SDK's *strict*
validation (`openai._models.validate_type(type_=RealtimeServerEvent, ...)`), which the tests
check on every event. Notably the echoed session must validate as a
`RealtimeTranscriptionSessionCreateRequest` (`audio/pcm` only at rate 24000), or the SDK
silently parses it as a conversation session.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "AppendAudio",
    "ClearBuffer",
    "ClientEvent",
    "CommitBuffer",
    "EventError",
    "FORMATS",
    "RealtimeConfig",
    "SemanticVad",
    "ServerVad",
    "UpdateSession",
    "error_event",
    "merge_update",
    "parse_client_event",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PcmFormat(_Model):
    type: Literal["audio/pcm"]
    rate: Literal[24000] = 24000  # OpenAI: "Only a 24kHz sample rate is supported"


class PcmuFormat(_Model):
    type: Literal["audio/pcmu"]


class PcmaFormat(_Model):
    type: Literal["audio/pcma"]


AudioFormatSpec = Annotated[PcmFormat | PcmuFormat | PcmaFormat, Field(discriminator="type")]

# OpenAI format -> (the gateway's encoding, sample rate): 16-bit LE PCM at 24 kHz, or G.711 at 8 kHz.
FORMATS: dict[str, tuple[Literal["linear16", "mulaw", "alaw"], int]] = {
    "audio/pcm": ("linear16", 24000),
    "audio/pcmu": ("mulaw", 8000),
    "audio/pcma": ("alaw", 8000),
}


class Transcription(_Model):
    model: str | None = Field(None, max_length=128)  # echoed; the gateway's engine answers whatever is named
    language: str | None = Field(None, max_length=16)
    prompt: str | None = Field(None, max_length=4096)
    keywords: tuple[Annotated[str, Field(max_length=100)], ...] | None = Field(None, max_length=100)
    languages: tuple[str, ...] | None = None  # accepted, not used
    delay: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None  # accepted, not used


class ServerVad(_Model):
    type: Literal["server_vad"]
    threshold: float | None = Field(None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(None, ge=0, le=10_000)
    silence_duration_ms: int | None = Field(None, ge=0, le=10_000)
    create_response: bool | None = None
    interrupt_response: bool | None = None
    idle_timeout_ms: int | None = Field(None, ge=0)


class SemanticVad(_Model):
    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


class NoiseReduction(_Model):
    type: Literal["near_field", "far_field"] | None = None
    strength: float | None = None


class AudioInput(_Model):
    format: AudioFormatSpec = PcmFormat(type="audio/pcm")
    transcription: Transcription = Transcription()
    # OpenAI's default for a transcription session is server VAD with these values.
    turn_detection: TurnDetection | None = ServerVad(
        type="server_vad", threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500
    )
    noise_reduction: NoiseReduction | None = None


class Audio(_Model):
    input: AudioInput = AudioInput()


class RealtimeConfig(_Model):
    """`session` of a `session.update`: the GA transcription session."""

    type: Literal["transcription"]
    audio: Audio = Audio()
    include: tuple[Literal["item.input_audio_transcription.logprobs"], ...] | None = None

    def echo(self, session_id: str) -> dict[str, Any]:
        """The session as `session.created`/`session.updated` carry it (strictly valid for the SDK)."""
        audio_input = self.audio.input
        return {
            "type": "transcription",
            "id": session_id,
            "object": "realtime.transcription_session",
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": audio_input.format.model_dump(),
                    "transcription": audio_input.transcription.model_dump(exclude_none=True)
                    | {"language": audio_input.transcription.language},
                    "turn_detection": _dump(audio_input.turn_detection),
                    "noise_reduction": _dump(audio_input.noise_reduction),
                }
            },
            "include": list(self.include) if self.include is not None else None,
        }


def _dump(model: BaseModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(exclude_none=True)


def merge_update(current: RealtimeConfig, session: dict[str, Any]) -> RealtimeConfig:
    """Apply a `session.update`'s `session` to the current config, as OpenAI does: fields left out keep
    their values; `format`, `turn_detection` and `noise_reduction` are replaced whole (null included).

    Raises:
        EventError: the session does not validate (the error names the parameter).
    """
    merged = current.model_dump(exclude_none=False)
    try:
        RealtimeConfig.model_validate(session)  # the update alone must be valid (names the bad field)
    except ValidationError as exc:
        raise _validation_error(exc, "session") from None
    merged_input = merged["audio"]["input"]
    update_input = (session.get("audio") or {}).get("input") or {}
    for key in ("format", "turn_detection", "noise_reduction"):
        if key in update_input:
            merged_input[key] = update_input[key]
    if "transcription" in update_input:
        merged_input["transcription"] = {**merged_input["transcription"], **(update_input["transcription"] or {})}
    if "include" in session:
        merged["include"] = session["include"]
    try:
        return RealtimeConfig.model_validate(_strip_none(merged))
    except ValidationError as exc:
        raise _validation_error(exc, "session") from None


def _strip_none(value: Any) -> Any:
    # Defaults fill what is None, except the two fields where null means something (no VAD, no denoise).
    if isinstance(value, dict):
        return {
            k: _strip_none(v) for k, v in value.items() if v is not None or k in ("turn_detection", "noise_reduction")
        }
    return value


# Client events.


@dataclass(frozen=True, slots=True)
class UpdateSession:
    session: dict[str, Any]
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class AppendAudio:
    audio: bytes
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class CommitBuffer:
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClearBuffer:
    event_id: str | None = None


ClientEvent = UpdateSession | AppendAudio | CommitBuffer | ClearBuffer


class EventError(Exception):
    """A client event that cannot be taken: becomes OpenAI's `error` event; the session goes on."""

    def __init__(self, code: str, message: str, param: str | None = None, event_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id


def parse_client_event(text: str) -> ClientEvent:
    """One text frame as a client event.

    Raises:
        EventError: not JSON, not an object, an unknown or unsupported `type`, a bad field.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EventError("invalid_json", f"the event is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventError("invalid_json", "an event must be a JSON object")
    event_id = data.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise EventError("invalid_type", "event_id must be a string", "event_id")
    kind = data.get("type")
    if kind == "input_audio_buffer.append":
        audio = data.get("audio")
        if not isinstance(audio, str):
            raise EventError("missing_required_parameter", "input_audio_buffer.append needs `audio`, a base64 string",
                             "audio", event_id)
        try:
            return AppendAudio(base64.b64decode(audio, validate=True), event_id)
        except (binascii.Error, ValueError):
            raise EventError("invalid_value", "`audio` is not valid base64", "audio", event_id) from None
    if kind == "input_audio_buffer.commit":
        return CommitBuffer(event_id)
    if kind == "input_audio_buffer.clear":
        return ClearBuffer(event_id)
    if kind == "session.update":
        session = data.get("session")
        if not isinstance(session, dict):
            raise EventError("missing_required_parameter", "session.update needs `session`, an object", "session",
                             event_id)
        return UpdateSession(session, event_id)
    if kind == "transcription_session.update":
        raise EventError("invalid_value", "the beta `transcription_session.update` is not supported; send "
                         "`session.update` with `session.type` \"transcription\" (the GA interface)", "type", event_id)
    raise EventError("invalid_value", f"unsupported event type {kind!r} on a transcription session", "type", event_id)


def _validation_error(exc: ValidationError, prefix: str) -> EventError:
    first = exc.errors()[0]
    # A discriminated union puts its tag in the location (`audio/pcm`, `server_vad`): keep the field names.
    fields = [str(part) for part in first["loc"] if not _is_tag(str(part))]
    param = ".".join([prefix, *fields])
    code = {"extra_forbidden": "unknown_parameter", "missing": "missing_required_parameter"}.get(
        first["type"], "invalid_value"
    )
    return EventError(code, f"invalid {param}: {first['msg']}", param)


def _is_tag(part: str) -> bool:
    return "/" in part or part in ("server_vad", "semantic_vad")


# Server events.


def error_event(event_id: str, error: EventError, kind: str = "invalid_request_error") -> dict[str, Any]:
    """OpenAI's `error` event; `error.event_id` names the client event that caused it, if it had one."""
    return {
        "type": "error",
        "event_id": event_id,
        "error": {
            "type": kind,
            "code": error.code,
            "message": error.message,
            "param": error.param,
            "event_id": error.event_id,
        },
    }
