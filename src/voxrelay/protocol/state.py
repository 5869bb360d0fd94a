"""The session lifecycle of every endpoint, as one transition table.

    CONFIGURING --configure / first audio--> STREAMING --stop--> FINALIZING --engine flushed--> CLOSED
    CONFIGURING --stop--> FINALIZING (/stt-stream opens a default stream first)
    CONFIGURING --close (nothing to flush: a drain, /v1/listen's CloseStream before audio)--> CLOSED
    any state --fatal error / client gone / deadline--> CLOSED

Everything that moves a session between states is in `TRANSITIONS`; a move not
listed there is a bug in the caller and raises `LocalProtocolError`.
"""

from __future__ import annotations

import enum

__all__ = [
    "ListenProtocolError",
    "ListenState",
    "ListenTrigger",
    "LocalProtocolError",
    "SessionState",
    "TRANSITIONS",
    "Trigger",
    "listen_state",
    "next_listen_state",
    "next_state",
]


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
    CLOSE = "close"  # a graceful end with nothing opened, so nothing to flush
    ENGINE_FLUSHED = "engine_flushed"
    FATAL = "fatal"
    DISCONNECT = "disconnect"


TRANSITIONS: dict[SessionState, dict[Trigger, SessionState]] = {
    SessionState.CONFIGURING: {
        Trigger.CONFIGURE: SessionState.STREAMING,
        Trigger.AUDIO: SessionState.STREAMING,
        Trigger.FINALIZE: SessionState.STREAMING,
        Trigger.STOP: SessionState.FINALIZING,
        Trigger.CLOSE: SessionState.CLOSED,
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


# /v1/listen names the same states in Deepgram's terms; its moves are moves of the one table.


class ListenState(enum.Enum):
    AWAITING_AUDIO = "awaiting_audio"  # upgraded; the audio format is not known yet (configuring)
    STREAMING = "streaming"  # engine stream open
    CLOSING = "closing"  # CloseStream received; the engine is flushing (finalizing)
    CLOSED = "closed"


class ListenTrigger(enum.Enum):
    FORMAT_KNOWN = "format_known"  # configure: the first audio told the format
    CLOSE_STREAM = "close_stream"  # stop, or close when nothing was opened
    ENGINE_FLUSHED = "engine_flushed"
    FATAL = "fatal"
    DISCONNECT = "disconnect"


class ListenProtocolError(LocalProtocolError):
    """The caller asked for a move the table does not allow (worded in Deepgram's terms)."""


_LISTEN_NAMES = {
    SessionState.CONFIGURING: ListenState.AWAITING_AUDIO,
    SessionState.STREAMING: ListenState.STREAMING,
    SessionState.FINALIZING: ListenState.CLOSING,
    SessionState.CLOSED: ListenState.CLOSED,
}
_FROM_LISTEN = {name: state for state, name in _LISTEN_NAMES.items()}


def listen_state(state: SessionState) -> ListenState:
    """A session state in Deepgram's terms."""
    return _LISTEN_NAMES[state]


def next_listen_state(state: ListenState, trigger: ListenTrigger) -> ListenState:
    """The move of the one table that a /v1/listen trigger stands for, in Deepgram's terms.

    Raises:
        ListenProtocolError: the table has no such move.
    """
    core = _FROM_LISTEN[state]
    if trigger is ListenTrigger.FORMAT_KNOWN:
        move = Trigger.CONFIGURE
    elif trigger is ListenTrigger.CLOSE_STREAM:
        move = Trigger.CLOSE if core is SessionState.CONFIGURING else Trigger.STOP
    else:
        move = Trigger(trigger.value)
    try:
        return listen_state(next_state(core, move))
    except LocalProtocolError:
        raise ListenProtocolError(f"can't handle {trigger.value!r} when the stream is {state.value!r}") from None
