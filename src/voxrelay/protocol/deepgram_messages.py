"""Deepgram's Live API (`/v1/listen`) messages: client control frames in, server messages out. Sans-I/O.

`parse_control` reads client text frames (KeepAlive, Finalize, CloseStream, Configure);
`encode` writes server messages (Results, Metadata, SpeechStarted, UtteranceEnd, Error,
ConfigureFailure) shaped as Deepgram's. The fake upstream in `voxrelay.testing.fake_deepgram`
builds its answers with the same classes.
"""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from voxrelay.protocol import events as ev
from voxrelay.protocol import json_text
from voxrelay.protocol.deepgram_params import ParamWarning

__all__ = [
    "CloseStream",
    "Configure",
    "ConfigureFailureMessage",
    "ControlError",
    "ControlMessage",
    "ErrorMessage",
    "Finalize",
    "KeepAlive",
    "MetadataMessage",
    "ModelInfo",
    "ResultsMessage",
    "ServerMessage",
    "SpeechStartedMessage",
    "UtteranceEndMessage",
    "encode",
    "parse_control",
]


# Messages: client -> server (text frames).


@dataclass(frozen=True, slots=True)
class KeepAlive:
    pass


@dataclass(frozen=True, slots=True)
class Finalize:
    pass


@dataclass(frozen=True, slots=True)
class CloseStream:
    pass


@dataclass(frozen=True, slots=True)
class Configure:
    """Deepgram's mid-stream reconfiguration; voxrelay answers `ConfigureFailure`."""


ControlMessage = KeepAlive | Finalize | CloseStream | Configure
_CONTROL: dict[str, type[ControlMessage]] = {
    "KeepAlive": KeepAlive,
    "Finalize": Finalize,
    "CloseStream": CloseStream,
    "Configure": Configure,
}


class ControlError(Exception):
    """A text frame that is not a control message; answered with an `Error` of variant SchemaError."""


def parse_control(text: str) -> ControlMessage:
    """Parse one client text frame.

    Raises:
        ControlError: not JSON, not an object, or an unknown `type`.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControlError(f"text message is not JSON: {exc.msg}") from None
    kind = data.get("type") if isinstance(data, dict) else None
    if kind not in _CONTROL:
        raise ControlError(f"unknown message type {kind!r}; expected KeepAlive, Finalize, CloseStream or Configure")
    return _CONTROL[kind]()


# Messages: server -> client.


@functools.lru_cache(maxsize=64)
def _model_uuid(arch: str, name: str, version: str) -> str:
    # Every Results message carries it: computed once per model, not per message.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"voxrelay:{arch}:{name}:{version}"))


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What `metadata.model_info` says: the engine and the model behind it."""

    name: str
    version: str
    arch: str

    @property
    def uuid(self) -> str:
        return _model_uuid(self.arch, self.name, self.version)

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "arch": self.arch}


@dataclass(frozen=True, slots=True)
class ResultsMessage:
    request_id: str
    model: ModelInfo
    start: float
    duration: float
    is_final: bool
    speech_final: bool
    from_finalize: bool
    transcript: str
    confidence: float
    words: tuple[ev.Word, ...] = ()
    channel_index: tuple[int, int] = (0, 1)
    type: Literal["Results"] = "Results"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "channel_index": list(self.channel_index),
            "duration": round(self.duration, 3),
            "start": round(self.start, 3),
            "is_final": self.is_final,
            "speech_final": self.speech_final,
            "channel": {
                "alternatives": [
                    {
                        "transcript": self.transcript,
                        "confidence": round(self.confidence, 4),
                        "words": [
                            {
                                "word": w.word,
                                "start": round(w.start, 3),
                                "end": round(w.end, 3),
                                "confidence": round(w.confidence, 4),
                                "punctuated_word": w.punctuated_word,
                            }
                            for w in self.words
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": self.model.to_dict(),
                "model_uuid": self.model.uuid,
            },
            "from_finalize": self.from_finalize,
        }


@dataclass(frozen=True, slots=True)
class MetadataMessage:
    request_id: str
    model: ModelInfo
    sha256: str
    created: str
    duration: float
    channels: int
    warnings: tuple[ParamWarning, ...] = ()
    type: Literal["Metadata"] = "Metadata"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self.sha256,
            "created": self.created,
            "duration": round(self.duration, 3),
            "channels": self.channels,
            "models": [self.model.uuid],
            "model_info": {self.model.uuid: self.model.to_dict()},
        }
        if self.warnings:
            body["warnings"] = [{"parameter": w.parameter, "type": w.type, "message": w.message} for w in self.warnings]
        return body


@dataclass(frozen=True, slots=True)
class SpeechStartedMessage:
    timestamp: float
    type: Literal["SpeechStarted"] = "SpeechStarted"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "channel": [0], "timestamp": round(self.timestamp, 3)}


@dataclass(frozen=True, slots=True)
class UtteranceEndMessage:
    last_word_end: float
    type: Literal["UtteranceEnd"] = "UtteranceEnd"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "channel": [0, 1], "last_word_end": round(self.last_word_end, 3)}


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    variant: str
    description: str
    message: str = ""
    type: Literal["Error"] = "Error"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "variant": self.variant, "description": self.description, "message": self.message}


@dataclass(frozen=True, slots=True)
class ConfigureFailureMessage:
    request_id: str
    code: str
    description: str
    type: Literal["ConfigureFailure"] = "ConfigureFailure"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "request_id": self.request_id, "code": self.code, "description": self.description}


ServerMessage = (
    ResultsMessage | MetadataMessage | SpeechStartedMessage | UtteranceEndMessage | ErrorMessage
    | ConfigureFailureMessage
)


def encode(message: ServerMessage) -> str:
    """The JSON text frame for a server message."""
    return json_text.dumps(message.to_dict())  # compact JSON, as Deepgram sends; orjson (protocol/json_text.py)
