"""THE session: the sans-I/O lifecycle every endpoint runs, whatever its wire format.

`SessionCore` holds the one lifecycle (`state.TRANSITIONS`) and the one ordered list of
actions (`actions.py`). Each protocol's session is a `SessionCore` that adds only its wire
format: `stt_stream.Session` (/stt-stream's JSON messages) and `deepgram_live.ListenSession`
(Deepgram Live). The session never awaits anything and imports no asyncio: the connection
runner feeds it and, after every call, carries out `actions()` in order (`codec.Codec`).
"""

from __future__ import annotations

from typing import Generic, TypeVar

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

    def _move(self, trigger: Trigger) -> None:
        self._state = next_state(self._state, trigger)

    def _emit(self, action: SendT | EngineAction) -> None:
        self._actions.append(action)
