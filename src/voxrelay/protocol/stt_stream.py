"""The `/stt-stream` codec: its JSON messages (messages.py) <-> the runner's commands and actions.

`SttStreamCodec` wraps the sans-I/O `Session` and implements the `Codec` protocol: typed
messages become text frames (`SendText`, tagged interim/final/error for the metrics),
and the runner's limits, drain and failures become `/stt-stream`'s wire form: an `error`
message with its protocol code, then the close code (1009 frame size, 1008 other limits).
"""

from __future__ import annotations

from voxrelay.protocol import messages as m
from voxrelay.protocol.actions import Action, SendKind, SendText
from voxrelay.protocol.events import EngineEvent
from voxrelay.protocol.session import SendMessage, Session
from voxrelay.protocol.state import SessionState

__all__ = ["SttStreamCodec"]

_DRAIN_WARNING = "the server is shutting down: this session ends after its final transcripts; reconnect"


class SttStreamCodec:
    """One `/stt-stream` connection's session, as the runner drives it (see `protocol.codec.Codec`)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def closed(self) -> bool:
        return self.session.closed

    @property
    def accepting_input(self) -> bool:
        return self.session.state in (SessionState.CONFIGURING, SessionState.STREAMING)

    @property
    def audio_bytes(self) -> int:
        return self.session.audio_bytes

    def receive_text(self, text: str) -> None:
        self.session.receive_text(text)

    def receive_audio(self, data: bytes) -> None:
        self.session.receive_audio(data)

    def engine_opened(self) -> None:
        self.session.engine_opened()

    def engine_event(self, event: EngineEvent) -> None:
        self.session.engine_event(event)

    def engine_flushed(self, audio_seconds: float | None) -> None:
        self.session.engine_flushed()

    def fail(self, code: str, message: str) -> None:
        self.session.fail(_error_code(code), message)

    def audio_error(self, message: str) -> None:
        self.session.fail("unsupported_audio", message)

    def limit_exceeded(self, message: str, close_code: int) -> None:
        self.session.fail("limit_exceeded", message, close_code)

    def idle_timeout(self, message: str) -> None:
        self.session.fail("limit_exceeded", message, 1008)

    def drain(self) -> None:
        """Warn the client, then stop as if it had sent `stop` (its finals follow)."""
        self.session.warn("draining", _DRAIN_WARNING)
        self.stop()

    def stop(self) -> None:
        """The server ends the session like a client's `stop`, so the finals still arrive."""
        self.session.stop()

    def client_gone(self) -> None:
        self.session.client_gone()

    def actions(self) -> list[Action]:
        return [_encode(action) if isinstance(action, SendMessage) else action for action in self.session.actions()]


def _encode(action: SendMessage) -> SendText:
    message = action.message
    kind: SendKind = "other"
    code: str | None = None
    if isinstance(message, m.InterimTranscript):
        kind = "interim"
    elif isinstance(message, m.FinalTranscript):
        kind = "final"
    elif isinstance(message, m.ErrorMessage):
        kind, code = "error", message.code
    return SendText(m.encode(message), kind, code)


_CODES: dict[str, m.ErrorCode] = {
    "bad_request": "bad_request",
    "unsupported_audio": "unsupported_audio",
    "engine_unavailable": "engine_unavailable",
    "engine_error": "engine_error",
    "limit_exceeded": "limit_exceeded",
}


def _error_code(code: str) -> m.ErrorCode:
    return _CODES.get(code, "internal")
