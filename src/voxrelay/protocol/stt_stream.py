"""/stt-stream: its JSON messages (messages.py) <-> the one session. Sans-I/O.

`Session` is the /stt-stream session: a `SessionCore` fed with `receive_text`, `receive_audio`,
`engine_opened`, `engine_event`, `engine_flushed`, `fail` and `client_gone`; after every call
the caller runs `actions()` in order (send a message, open/feed/finalize/close the engine
stream, close the socket). `SttStreamCodec` is what the connection runner drives
(`codec.Codec`): typed messages become text frames (`SendText`, tagged interim/final/error
for the metrics), and the runner's limits, drain and failures become /stt-stream's wire form:
an `error` message with its protocol code, then the close code (1009 frame size, 1008 others).
"""

from __future__ import annotations

from dataclasses import dataclass

from voxrelay.protocol import events as engine_events
from voxrelay.protocol import messages as m
from voxrelay.protocol.actions import Action as RunnerAction
from voxrelay.protocol.actions import (
    CloseEngine,
    CloseSocket,
    FeedAudio,
    FinalizeEngine,
    OpenEngine,
    SendKind,
    SendText,
)
from voxrelay.protocol.events import EngineEvent
from voxrelay.protocol.session import SessionCore
from voxrelay.protocol.state import SessionState, Trigger

__all__ = [
    "Action",
    "CloseEngine",
    "CloseSocket",
    "FeedAudio",
    "FinalizeEngine",
    "OpenEngine",
    "SendMessage",
    "Session",
    "SessionLimits",
    "SttStreamCodec",
    "close_code_for",
]


# Actions the server must carry out, in order: the shared vocabulary (actions.py), plus
# `SendMessage`, a typed /stt-stream message its codec encodes.


@dataclass(frozen=True, slots=True)
class SendMessage:
    message: m.ServerMessage


Action = SendMessage | OpenEngine | FeedAudio | FinalizeEngine | CloseEngine | CloseSocket


@dataclass(frozen=True, slots=True)
class SessionLimits:
    max_text_frame: int = 16 * 1024
    max_audio_frame: int = 64 * 1024


_CLOSE_CODES = {
    "bad_request": 1008,
    "unsupported_audio": 1003,
    "engine_unavailable": 1011,
    "engine_error": 1011,
    "limit_exceeded": 1008,
    "quota_exceeded": 1008,
    "internal": 1011,
}


def close_code_for(code: m.ErrorCode) -> int:
    """The WebSocket close code that follows a fatal error with this protocol code."""
    return _CLOSE_CODES[code]


class Session(SessionCore[SendMessage]):
    """One /stt-stream client's session, from the first frame to the close."""

    def __init__(self, session_id: str, engine_name: str, limits: SessionLimits | None = None) -> None:
        super().__init__()
        self.session_id = session_id
        self.engine_name = engine_name
        self.limits = limits or SessionLimits()
        self.finals_sent = 0  # a count, not the text: a long session must not grow with its transcript
        self._engine_open = False
        self._told_audio_after_stop = False

    # Public methods for receiving data.

    def receive_text(self, text: str) -> None:
        """A text frame from the client. Afterwards, run `actions()`."""
        if self._state in (SessionState.CLOSED,):
            return
        if len(text.encode()) > self.limits.max_text_frame:
            self._fatal("limit_exceeded", f"text frame larger than {self.limits.max_text_frame} bytes", 1009)
            return
        try:
            message = m.parse_client_text(text)
        except m.ProtocolError as exc:
            # A configure we cannot honour leaves no usable session; other mistakes are survivable.
            configuring = self._state is SessionState.CONFIGURING
            if configuring and (exc.code == "unsupported_audio" or _is_configure(text)):
                self._fatal(exc.code, exc.message)
            else:
                self._send(m.ErrorMessage(exc.code, exc.message))
            return
        if isinstance(message, m.Configure):
            self._on_configure(message)
        elif isinstance(message, m.Finalize):
            self._on_finalize()
        else:
            self._on_stop()

    def receive_audio(self, data: bytes) -> None:
        """A binary frame from the client. Afterwards, run `actions()`."""
        if self._state is SessionState.CLOSED:
            return
        if len(data) > self.limits.max_audio_frame:
            self._fatal("limit_exceeded", f"audio frame larger than {self.limits.max_audio_frame} bytes", 1009)
            return
        if self._state is SessionState.FINALIZING:
            # Said once: a client still streaming when the server stopped it (a drain) sends many.
            if not self._told_audio_after_stop:
                self._told_audio_after_stop = True
                self._send(m.ErrorMessage("bad_request", "audio after stop is ignored"))
            return
        if self._state is SessionState.CONFIGURING:
            self._open(m.AudioFormat(), m.StreamOptions())
            self._move(Trigger.AUDIO)
        # else STREAMING, which audio leaves as it is (the table's STREAMING --audio--> STREAMING):
        # no lookup per frame.
        if data:
            self.audio_bytes += len(data)
            self._emit(FeedAudio(data))

    def engine_opened(self) -> None:
        """The engine stream from `OpenEngine` is open: audio is accepted."""
        self._engine_open = True
        if self._state is not SessionState.CLOSED:
            self._send(m.Ready(self.session_id, self.engine_name))

    def engine_event(self, event: engine_events.EngineEvent) -> None:
        """An event from the engine stream."""
        if self._state is SessionState.CLOSED:
            return
        if isinstance(event, engine_events.InterimResult):
            if event.transcript:
                self._send(m.InterimTranscript(event.transcript))
        elif isinstance(event, engine_events.FinalResult):
            if event.transcript:
                self.finals_sent += 1
                self._send(m.FinalTranscript(event.transcript, event.start, event.end, event.speech_final))
        elif isinstance(event, engine_events.SpeechStarted):
            self._send(m.SpeechStarted(event.timestamp))
        elif isinstance(event, engine_events.UtteranceEnd):
            self._send(m.UtteranceEnd(event.last_word_end))
        elif isinstance(event, engine_events.EngineWarning):
            self._send(m.Warning(event.code, event.message))
        elif event.fatal:
            self._fatal(event.code, event.message)
        else:
            self._send(m.ErrorMessage(event.code, event.message))

    def engine_flushed(self) -> None:
        """The engine's events ended after `CloseEngine` (or on its own): say `stopped`, close 1000."""
        if self._state is SessionState.CLOSED:
            return
        self._move(Trigger.ENGINE_FLUSHED)
        if self._quota_ended():  # `quota_exceeded` and 1008 in place of `stopped` and 1000
            return
        self._send(m.Stopped())
        self._emit(CloseSocket(1000, "stopped"))

    def fail(self, code: m.ErrorCode, message: str, close_code: int | None = None) -> None:
        """A fatal problem found by the server (engine failed to open, deadline, bad audio)."""
        if self._state is not SessionState.CLOSED:
            self._fatal(code, message, close_code)

    def warn(self, code: str, message: str) -> None:
        """Tell the client something that does not end the session."""
        if self._state is not SessionState.CLOSED:
            self._send(m.Warning(code, message))

    def stop(self) -> None:
        """The server ends the session (a drain): like a client's stop, so the finals still arrive.

        A session that never configured has nothing to flush: it says `stopped` and closes 1012.
        """
        if self._state is SessionState.CONFIGURING:
            self._move(Trigger.CLOSE)
            self._send(m.Stopped())
            self._emit(CloseSocket(1012, "the server is restarting"))
        elif self._state is SessionState.STREAMING:
            self._on_stop()

    def _quota_stop(self) -> None:
        """Like a client's stop, so the finals arrive."""
        self._told_audio_after_stop = True  # the quota's error says why; no `bad_request` for the audio after it
        self._on_stop()

    # Public methods for sending data.

    @property
    def state(self) -> SessionState:
        return self._state

    # Private helpers.

    def _on_configure(self, message: m.Configure) -> None:
        if self._state is not SessionState.CONFIGURING:
            self._send(m.ErrorMessage("bad_request", "configure must be the first frame; it was ignored"))
            return
        self._open(message.audio_format, message.options)
        self._move(Trigger.CONFIGURE)

    def _on_finalize(self) -> None:
        if self._state is SessionState.FINALIZING:
            self._send(m.ErrorMessage("bad_request", "finalize after stop is ignored"))
            return
        if self._state is SessionState.CONFIGURING:
            self._open(m.AudioFormat(), m.StreamOptions())
        self._move(Trigger.FINALIZE)
        self._emit(FinalizeEngine())

    def _on_stop(self) -> None:
        if self._state is SessionState.FINALIZING:
            return  # a second stop changes nothing
        if self._state is SessionState.CONFIGURING:
            self._open(m.AudioFormat(), m.StreamOptions())
        self._move(Trigger.STOP)
        self._emit(CloseEngine())

    def _open(self, audio_format: m.AudioFormat, options: m.StreamOptions) -> None:
        self._emit(OpenEngine(audio_format, options))

    def _send(self, message: m.ServerMessage) -> None:
        self._emit(SendMessage(message))

    def _fatal(self, code: m.ErrorCode, message: str, close_code: int | None = None) -> None:
        self._move(Trigger.FATAL)
        self._send(m.ErrorMessage(code, message))
        self._emit(CloseSocket(close_code or close_code_for(code), message[:120]))


def _is_configure(text: str) -> bool:
    return '"configure"' in text


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

    def drain_notice(self) -> None:
        """Warn the client that the session ends after its finals."""
        self.session.warn("draining", _DRAIN_WARNING)

    def drain(self) -> None:
        """Stop as if the client had sent `stop` (its finals follow)."""
        self.stop()

    def stop(self) -> None:
        """The server ends the session like a client's `stop`, so the finals still arrive."""
        self.session.stop()

    def quota_warning(self, message: str) -> None:
        self.session.warn("quota", message)

    def quota_exceeded(self, message: str) -> None:
        self.session.quota_exceeded(message)

    def client_gone(self) -> None:
        self.session.client_gone()

    def actions(self) -> list[RunnerAction]:
        actions = self.session.actions()
        if not actions:
            return []
        return [_encode(action) if isinstance(action, SendMessage) else action for action in actions]


_TRANSCRIPT_KINDS: dict[type, SendKind] = {m.InterimTranscript: "interim", m.FinalTranscript: "final"}


def _encode(action: SendMessage) -> SendText:
    message = action.message
    kind = _TRANSCRIPT_KINDS.get(type(message))  # one lookup for the messages a relay sends most
    if kind is not None:
        return SendText(m.encode(message), kind, None)
    if isinstance(message, m.ErrorMessage):
        return SendText(m.encode(message), "error", message.code)
    return SendText(m.encode(message), "other", None)


_CODES: dict[str, m.ErrorCode] = {
    "bad_request": "bad_request",
    "unsupported_audio": "unsupported_audio",
    "engine_unavailable": "engine_unavailable",
    "engine_error": "engine_error",
    "limit_exceeded": "limit_exceeded",
    "quota_exceeded": "quota_exceeded",
}


def _error_code(code: str) -> m.ErrorCode:
    return _CODES.get(code, "internal")
