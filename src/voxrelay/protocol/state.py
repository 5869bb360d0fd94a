"""The session lifecycle, as one transition table.

    CONFIGURING --configure / first audio--> STREAMING --stop--> FINALIZING --engine flushed--> CLOSED
    any state --fatal error / client gone / deadline--> CLOSED

Everything that moves a session between states is in `TRANSITIONS`; a move not
listed there is a bug in the caller and raises `LocalProtocolError`.
"""

from __future__ import annotations

import enum

__all__ = ["LocalProtocolError", "SessionState", "Trigger", "TRANSITIONS", "next_state"]


class SessionState(enum.Enum):
    CONFIGURING = "configuring"  # connected; the first frame may be a configure
    STREAMING = "streaming"  # engine stream open; audio, finalize and stop accepted
    FINALIZING = "finalizing"  # stop received; waiting for the engine to flush its finals
    CLOSED = "closed"  # nothing more is read or sent


class Trigger(enum.Enum):
    CONFIGURE = "configure"
    AUDIO = "audio"
    FINALIZE = "finalize"
    STOP = "stop"
    ENGINE_FLUSHED = "engine_flushed"
    FATAL = "fatal"
    DISCONNECT = "disconnect"


TRANSITIONS: dict[SessionState, dict[Trigger, SessionState]] = {
    SessionState.CONFIGURING: {
        Trigger.CONFIGURE: SessionState.STREAMING,
        Trigger.AUDIO: SessionState.STREAMING,
        Trigger.FINALIZE: SessionState.STREAMING,
        Trigger.STOP: SessionState.FINALIZING,
        Trigger.FATAL: SessionState.CLOSED,
        Trigger.DISCONNECT: SessionState.CLOSED,
    },
    SessionState.STREAMING: {
        Trigger.AUDIO: SessionState.STREAMING,
        Trigger.FINALIZE: SessionState.STREAMING,
        Trigger.STOP: SessionState.FINALIZING,
        Trigger.FATAL: SessionState.CLOSED,
        Trigger.DISCONNECT: SessionState.CLOSED,
        # An engine that ends on its own (e.g. upstream closed) ends the session like a stop.
        Trigger.ENGINE_FLUSHED: SessionState.CLOSED,
    },
    SessionState.FINALIZING: {
        Trigger.ENGINE_FLUSHED: SessionState.CLOSED,
        Trigger.FATAL: SessionState.CLOSED,
        Trigger.DISCONNECT: SessionState.CLOSED,
    },
    SessionState.CLOSED: {
        Trigger.DISCONNECT: SessionState.CLOSED,
        Trigger.FATAL: SessionState.CLOSED,
        Trigger.ENGINE_FLUSHED: SessionState.CLOSED,
    },
}


class LocalProtocolError(RuntimeError):
    """The caller asked for a move the table does not allow."""


def next_state(state: SessionState, trigger: Trigger) -> SessionState:
    """The state after `trigger` in `state`.

    Raises:
        LocalProtocolError: the table has no such move.
    """
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise LocalProtocolError(f"can't handle {trigger.value!r} when the session is {state.value!r}") from None
