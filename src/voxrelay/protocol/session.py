"""THE session: the sans-I/O lifecycle every endpoint runs, whatever its wire format.

`SessionCore` holds the one lifecycle (`state.TRANSITIONS`) and the one ordered list of
actions (`actions.py`). Each protocol's session is a `SessionCore` that adds only its wire
format: `stt_stream.Session` (/stt-stream's JSON messages) and `deepgram_live.ListenSession`
(Deepgram Live). The session never awaits anything and imports no asyncio: the connection
runner feeds it and, after every call, carries out `actions()` in order (`codec.Codec`).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from voxrelay.protocol.actions import EngineAction
from voxrelay.protocol.state import SessionState, Trigger, next_state

__all__ = ["SessionCore"]


SendT = TypeVar("SendT")


class SessionCore(Generic[SendT]):
    """THE session every endpoint runs: one lifecycle (`state.TRANSITIONS`), one ordered list of actions.

    Each protocol's session subclasses it with its send action (`SendMessage` for /stt-stream,
    `SendText` for /v1/listen): it moves with `_move`, queues with `_emit`, and the runner takes
    `actions()` after every call, in order (`protocol.codec.Codec`).
    """

    def __init__(self) -> None:
        self._state = SessionState.CONFIGURING
        self.audio_bytes = 0
        self._quota_message: str | None = None  # set when the key's quota ends the session after its finals
        self._actions: list[SendT | EngineAction] = []

    def actions(self) -> list[SendT | EngineAction]:
        """Actions to run now, oldest first; the list is handed over and cleared."""
        actions, self._actions = self._actions, []
        return actions

    @property
    def closed(self) -> bool:
        return self._state is SessionState.CLOSED

    def client_gone(self) -> None:
        """The socket closed under us: the runner releases the engine stream; nothing is sent."""
        self._move(Trigger.DISCONNECT)

    def quota_warning(self, message: str) -> None:
        """The key used 90 % of its quota. A protocol without a warning message says nothing (this default)."""

    def quota_exceeded(self, message: str) -> None:
        """The key reached its quota. Before any audio: the protocol's error and close 1008 at once. Streaming:
        the session stops as its protocol's stop does, so the finals are still sent; the protocol's
        `engine_flushed` then sends the error (`_quota_end`) in place of its normal close."""
        if self._state is SessionState.CONFIGURING:
            self._quota_end(message)
        elif self._state is not SessionState.CLOSED:
            self._quota_message = message
            if self._state is SessionState.STREAMING:
                self._quota_stop()

    def drain(self) -> None:
        """End the session gracefully, every final still delivered (each protocol's)."""
        raise NotImplementedError

    def _quota_stop(self) -> None:
        """Stop the engine as a drain does: the finals are still sent."""
        self.drain()

    def _quota_ended(self) -> bool:
        """After the engine's flush: True when the quota ended the session (its error and close are queued)."""
        if self._quota_message is None:
            return False
        self._quota_end(self._quota_message)
        return True

    def _quota_end(self, message: str) -> None:
        """The protocol's error `quota_exceeded`, then close 1008."""
        self._fatal("quota_exceeded", message, 1008)

    def _fatal(self, code: Any, message: str, close_code: int | None = None) -> None:
        """Send the protocol's fatal error `code`, then close (each protocol's)."""
        raise NotImplementedError

    def _move(self, trigger: Trigger) -> None:
        self._state = next_state(self._state, trigger)

    def _emit(self, action: SendT | EngineAction) -> None:
        self._actions.append(action)
