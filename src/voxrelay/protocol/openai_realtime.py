"""The OpenAI Realtime transcription codec (`WS /v1/realtime?intent=transcription`), sans-I/O.

`RealtimeSession` is one more codec on the one session core and the one connection runner
(`protocol.codec.Codec`): the runner feeds it frames and engine events and carries out its
`actions()` in order. The wire format (client events, the session config, server events)
is in `openai_realtime_messages`.

Turns. Each turn is one conversation item: `speech_started` -> `delta`* -> `speech_stopped`
-> `committed` -> `completed`, all with one `item_id`, each `committed` naming the previous
item. With `server_vad` (and `semantic_vad`, taken as server VAD) the engine's endpointing ends
a turn: its `speech_final` final. With `turn_detection: null` the client's
`input_audio_buffer.commit` ends it: the engine is finalized, and the `from_finalize` final
that answers it (every finalize is answered, `engines.base.EngineStream.finalize`) completes
the item. A commit works the same way under VAD.

Deltas. OpenAI's deltas only append. An interim that rewrites words already sent cannot be
taken back, so a delta is sent only when the turn's text (its finals, then the latest interim)
still begins with everything sent so far; otherwise nothing is sent until it does again.
`completed.transcript` is authoritative: it equals the concatenated deltas whenever no
interim was rewritten.

Clear. Audio already given to a streaming engine cannot be taken back: `clear` finalizes the
engine and drops what that finalize answers (the uncommitted turn never completes), then says
`cleared`. Deltas of the dropped turn may already have been sent.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from voxrelay.protocol import events as ev
from voxrelay.protocol.actions import (
    CloseEngine,
    CloseSocket,
    FeedAudio,
    FinalizeEngine,
    OpenEngine,
    SendKind,
    SendText,
)
from voxrelay.protocol.messages import AudioFormat, StreamOptions
from voxrelay.protocol.openai_realtime_messages import (
    FORMATS,
    AppendAudio,
    ClearBuffer,
    CommitBuffer,
    EventError,
    RealtimeConfig,
    SemanticVad,
    ServerVad,
    UpdateSession,
    error_event,
    merge_update,
    parse_client_event,
)
from voxrelay.protocol.session import SessionCore
from voxrelay.protocol.state import SessionState, Trigger

__all__ = ["MIN_COMMIT_MS", "RealtimeSession", "endpointing_ms"]

MIN_COMMIT_MS = 100  # OpenAI: "Expected at least 100ms of audio"
_MANUAL_ENDPOINTING_MS = 500  # without VAD the engine still segments; item boundaries are the client's commits
_EAGERNESS_MS = {"high": 300, "medium": 500, "auto": 500, "low": 1000}  # semantic_vad -> silence to end a turn
_FATAL_CLOSE = {"engine_error": 1011, "engine_unavailable": 1011, "internal": 1011, "unsupported_audio": 1008}


def endpointing_ms(config: RealtimeConfig, min_endpointing_ms: int) -> int:
    """The engine's endpointing for a session's turn detection, within what the engine honours."""
    turn = config.audio.input.turn_detection
    if isinstance(turn, ServerVad):
        wanted = turn.silence_duration_ms if turn.silence_duration_ms is not None else 500
    elif isinstance(turn, SemanticVad):
        wanted = _EAGERNESS_MS[turn.eagerness or "auto"]
    else:
        wanted = _MANUAL_ENDPOINTING_MS
    return min(10_000, max(wanted, min_endpointing_ms, 10))


@dataclass
class _Item:
    """One turn: the finals that belong to it, the text sent as deltas, where it starts and ends."""

    item_id: str
    start_s: float
    finals: list[str] = field(default_factory=list)
    interim: str = ""
    sent: str = ""
    end_s: float | None = None
    discard: bool = False  # cleared: its finals are dropped and it never completes
    speaking: bool = False  # speech_started was sent and speech_stopped not yet

    @property
    def text(self) -> str:
        return " ".join(part for part in (*self.finals, self.interim) if part).strip()


class RealtimeSession(SessionCore[SendText]):
    """One `/v1/realtime?intent=transcription` connection after the upgrade.

    Args:
        session_id: echoed as the session's `id`; also prefixes event and item ids.
        min_endpointing_ms: the engine's smallest endpointing (`Capabilities.min_endpointing_ms`).

    The constructor queues `session.created`: the runner sends it right after the upgrade.
    """

    def __init__(self, session_id: str, min_endpointing_ms: int = 0) -> None:
        super().__init__()
        self.session_id = session_id
        self.config = RealtimeConfig(type="transcription")
        self._min_endpointing_ms = min_endpointing_ms
        self._events = 0
        self._items = 0
        self._item: _Item | None = None  # the open turn
        self._pending: deque[_Item] = deque()  # committed or cleared turns waiting for their finalize's answer
        self._previous_item_id: str | None = None
        self._buffered = 0  # bytes appended since the last commit, clear or end of turn
        self._fed = 0  # bytes given to the engine in all
        self._cursor_s = 0.0  # where the next turn starts on the engine's timeline
        self._send({"type": "session.created", "session": self.config.echo(session_id)})

    # Public methods for receiving data.

    def receive_text(self, text: str) -> bytes | None:
        """A text frame. Returns the audio of an `input_audio_buffer.append`, which the runner checks
        against the limits and hands to `receive_audio`; other events are handled here. Afterwards,
        run `actions()`."""
        if self._state is SessionState.CLOSED:
            return None
        try:
            event = parse_client_event(text)
            if isinstance(event, AppendAudio):
                return event.audio
            if isinstance(event, UpdateSession):
                self._update(event)
            elif isinstance(event, CommitBuffer):
                self._commit(event.event_id)
            elif isinstance(event, ClearBuffer):
                self._clear()
        except EventError as exc:
            self._error(exc)
        return None

    def receive_audio(self, data: bytes) -> None:
        """Audio in the session's format (an append's, or a binary frame's: a voxrelay extension)."""
        if not data or self._state not in (SessionState.CONFIGURING, SessionState.STREAMING):
            return
        if self._state is SessionState.CONFIGURING:
            self._move(Trigger.CONFIGURE)
            self._emit(OpenEngine(self.audio_format, self.stream_options()))
        self.audio_bytes += len(data)
        self._buffered += len(data)
        self._fed += len(data)
        self._emit(FeedAudio(data))

    def engine_opened(self) -> None:
        """Nothing to say: `session.created` was sent at the upgrade."""

    def engine_event(self, event: ev.EngineEvent) -> None:
        """An event from the engine stream. Afterwards, run `actions()`."""
        if self._state is SessionState.CLOSED:
            return
        if isinstance(event, ev.FinalResult):
            self._on_final(event)
        elif isinstance(event, ev.InterimResult):
            item = self._pending[0] if self._pending else self._open_item(event.start)
            item.interim = event.transcript.strip()
            self._delta(item)
        elif isinstance(event, ev.SpeechStarted):
            # Under VAD a turn opens with speech_started, unless an interim already opened it and sent text
            # (an engine that reports speech after its first words): deltas never precede speech_started.
            opened = self._item is not None and (self._item.speaking or bool(self._item.sent or self._item.finals))
            if not self._pending and not opened and self._vad:
                item = self._open_item(event.timestamp)
                item.speaking = True
                self._send({"type": "input_audio_buffer.speech_started", "audio_start_ms": _ms(event.timestamp),
                            "item_id": item.item_id})
        elif isinstance(event, ev.EngineError):
            if event.fatal:
                self._fatal(event.code, event.message)
            else:
                self._error(EventError(event.code, event.message), "server_error")
        # UtteranceEnd and EngineWarning have no OpenAI counterpart.

    def engine_flushed(self, audio_seconds: float | None = None) -> None:
        """The engine's events ended (a drain's close): every turn still open completes, then close 1000."""
        if self._state is SessionState.CLOSED:
            return
        self._move(Trigger.ENGINE_FLUSHED)
        while self._pending:
            self._complete(self._pending.popleft())
        if self._item is not None:
            item, self._item = self._item, None
            self._commit_item(item)
            self._complete(item)
        if not self._quota_ended():
            self._emit(CloseSocket(1000, ""))

    def fail(self, code: str, message: str) -> None:
        if self._state is not SessionState.CLOSED:
            self._fatal(code, message)

    def audio_error(self, message: str) -> None:
        self.fail("unsupported_audio", message)

    def limit_exceeded(self, message: str, close_code: int) -> None:
        if self._state is not SessionState.CLOSED:
            self._fatal("limit_exceeded", message, close_code)

    def idle_timeout(self, message: str) -> None:
        if self._state in (SessionState.CONFIGURING, SessionState.STREAMING):
            self._fatal("limit_exceeded", message, 1008)

    def drain_notice(self) -> None:
        """OpenAI's protocol has no warning event: nothing is said before the close."""

    def drain(self) -> None:
        """The server is draining: the open turn is finished by the engine's flush, then close 1000."""
        if self._state is SessionState.CONFIGURING:
            self._move(Trigger.CLOSE)
            self._emit(CloseSocket(1000, ""))
        elif self._state is SessionState.STREAMING:
            self._move(Trigger.STOP)
            self._emit(CloseEngine())

    # What the runner reads.

    @property
    def accepting_input(self) -> bool:
        return self._state in (SessionState.CONFIGURING, SessionState.STREAMING)

    @property
    def audio_format(self) -> AudioFormat:
        encoding, rate = FORMATS[self.config.audio.input.format.type]
        return AudioFormat(encoding=encoding, sample_rate=rate, channels=1)

    def stream_options(self) -> StreamOptions:
        """The engine options for the current config (fixed once the first audio opened the stream)."""
        transcription = self.config.audio.input.transcription
        return StreamOptions(
            language=transcription.language,
            endpointing=endpointing_ms(self.config, self._min_endpointing_ms),
            interim_results=True,
            vad_events=True,
            keyterms=transcription.keywords or (),
        )

    # Private helpers: client events.

    @property
    def _vad(self) -> bool:
        return self.config.audio.input.turn_detection is not None

    def _update(self, event: UpdateSession) -> None:
        try:
            config = merge_update(self.config, event.session)
        except EventError as exc:
            raise EventError(exc.code, exc.message, exc.param, event.event_id) from None
        if self._state is not SessionState.CONFIGURING:
            before, after = self.config.audio.input, config.audio.input
            if (before.format, before.transcription) != (after.format, after.transcription):
                raise EventError(
                    "session_update_after_audio",
                    "voxrelay fixes the audio format and the transcription settings when the first audio arrives; "
                    "open a new session to change them",
                    "session.audio.input",
                    event.event_id,
                )
        self.config = config
        self._send({"type": "session.updated", "session": config.echo(self.session_id)})

    def _commit(self, event_id: str | None) -> None:
        buffered_ms = 1000 * self._buffered / (self.audio_format.bytes_per_second or 1)
        if self._state is not SessionState.STREAMING or buffered_ms < MIN_COMMIT_MS:
            raise EventError(
                "input_audio_buffer_commit_empty",
                f"buffer too small. Expected at least {MIN_COMMIT_MS}ms of audio, "
                f"but buffer only has {buffered_ms:.2f}ms of audio.",
                None,
                event_id,
            )
        item, self._item = self._item or self._new_item(self._cursor_s), None
        self._buffered = 0
        self._commit_item(item)
        self._pending.append(item)
        self._emit(FinalizeEngine(ends_turn=True))

    def _clear(self) -> None:
        if self._state is SessionState.STREAMING and (self._item is not None or self._buffered):
            item, self._item = self._item or self._new_item(self._cursor_s), None
            item.discard = True
            self._pending.append(item)
            self._emit(FinalizeEngine())
        self._buffered = 0
        self._send({"type": "input_audio_buffer.cleared"})

    # Private helpers: turns.

    def _open_item(self, start_s: float) -> _Item:
        if self._item is None:
            self._item = self._new_item(start_s)
        return self._item

    def _new_item(self, start_s: float) -> _Item:
        self._items += 1
        return _Item(f"item_{self.session_id[:12]}_{self._items}", max(start_s, self._cursor_s))

    def _on_final(self, event: ev.FinalResult) -> None:
        if self._pending:
            item = self._pending[0]
        elif event.transcript.strip() or (event.speech_final and self._item is not None):
            item = self._open_item(event.start)
        else:
            return  # an empty final outside any turn: nothing was said
        item.interim = ""
        if event.transcript.strip():
            item.finals.append(event.transcript.strip())
        item.end_s = max(event.end, item.end_s or 0.0)
        self._delta(item)
        if self._pending and event.from_finalize:
            self._complete(self._pending.popleft())
        elif not self._pending and event.speech_final and self._vad:
            self._item = None
            self._buffered = 0
            self._commit_item(item, item.end_s)
            self._complete(item)

    def _commit_item(self, item: _Item, end_s: float | None = None) -> None:
        """`committed` (after `speech_stopped` if VAD heard the turn start: at the turn's end, or at the
        audio received so far when the client commits or a drain ends the turn mid-speech)."""
        if item.speaking:
            item.speaking = False
            fed_s = self._fed / (self.audio_format.bytes_per_second or 1)
            self._send({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": _ms(end_s or fed_s),
                        "item_id": item.item_id})
        self._send({"type": "input_audio_buffer.committed", "item_id": item.item_id,
                    "previous_item_id": self._previous_item_id})
        self._previous_item_id = item.item_id

    def _delta(self, item: _Item) -> None:
        text = item.text
        if item.discard or not text.startswith(item.sent) or len(text) == len(item.sent):
            return  # a rewrite of words already sent is not sent; `completed` carries the final text
        delta, item.sent = text[len(item.sent) :], text
        self._send({"type": "conversation.item.input_audio_transcription.delta", "item_id": item.item_id,
                    "content_index": 0, "delta": delta}, "interim")

    def _complete(self, item: _Item) -> None:
        fed_s = self._fed / (self.audio_format.bytes_per_second or 1)
        end = item.end_s if item.end_s is not None else fed_s
        self._cursor_s = max(self._cursor_s, end)
        if item.discard:
            return
        item.interim = ""
        self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item.item_id,
                "content_index": 0,
                "transcript": item.text,
                "usage": {"type": "duration", "seconds": round(max(0.0, end - item.start_s), 3)},
            },
            "final",
        )

    # Private helpers: sending.

    def _event_id(self) -> str:
        self._events += 1
        return f"event_{self.session_id[:12]}_{self._events}"

    def _send(self, event: dict[str, Any], kind: SendKind = "other", code: str | None = None) -> None:
        self._emit(SendText(json.dumps({"event_id": self._event_id(), **event}), kind, code))

    def _error(self, error: EventError, kind: str = "invalid_request_error") -> None:
        """A survivable error: OpenAI's `error` event; counted as `bad_request` when the client caused it."""
        metric = "bad_request" if kind == "invalid_request_error" else error.code
        self._emit(SendText(json.dumps(error_event(self._event_id(), error, kind)), "error", metric))

    def _fatal(self, code: str, message: str, close_code: int | None = None) -> None:
        self._move(Trigger.FATAL)
        client_side = code in ("limit_exceeded", "unsupported_audio", "quota_exceeded")
        kind = "invalid_request_error" if client_side else "server_error"
        event = error_event(self._event_id(), EventError(code, message), kind)
        self._emit(SendText(json.dumps(event), "error", code))
        self._emit(CloseSocket(close_code or _FATAL_CLOSE.get(code, 1011), _truncate(f"voxrelay {code}: {message}")))


def _ms(seconds: float | None) -> int:
    return round(1000 * (seconds or 0.0))


def _truncate(reason: str, limit: int = 123) -> str:
    data = reason.encode()
    return reason if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "..."
