"""The session lifecycle, as one transition table.

    CONFIGURING --configure / first audio--> STREAMING --stop--> FINALIZING --engine flushed--> CLOSED
    any state --fatal error / client gone / deadline--> CLOSED

Everything that moves a session between states is in `TRANSITIONS`; a move not
listed there is a bug in the caller and raises `LocalProtocolError`.
"""

from __future__ import annotations

import enum

__all__ = [
    "LISTEN_TRANSITIONS",
    "ListenProtocolError",
    "ListenState",
    "ListenTrigger",
    "LocalProtocolError",
    "SessionState",
    "TRANSITIONS",
    "Trigger",
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


# The /v1/listen lifecycle (Deepgram Live has no configure and no stop before audio):
#
#     AWAITING_AUDIO --first audio, format known--> STREAMING --CloseStream--> CLOSING --engine flushed--> CLOSED
#     AWAITING_AUDIO --CloseStream--> CLOSED (Metadata, 1000)
#     any state --fatal error / idle timeout / client gone--> CLOSED


class ListenState(enum.Enum):
    AWAITING_AUDIO = "awaiting_audio"  # upgraded; the audio format is not known yet
    STREAMING = "streaming"  # engine stream open
    CLOSING = "closing"  # CloseStream received; the engine is flushing
    CLOSED = "closed"


class ListenTrigger(enum.Enum):
    FORMAT_KNOWN = "format_known"
    CLOSE_STREAM = "close_stream"
    ENGINE_FLUSHED = "engine_flushed"
    FATAL = "fatal"
    DISCONNECT = "disconnect"


_S, _T = ListenState, ListenTrigger
LISTEN_TRANSITIONS: dict[ListenState, dict[ListenTrigger, ListenState]] = {
    _S.AWAITING_AUDIO: {
        _T.FORMAT_KNOWN: _S.STREAMING,
        _T.CLOSE_STREAM: _S.CLOSED,
        _T.FATAL: _S.CLOSED,
        _T.DISCONNECT: _S.CLOSED,
    },
    _S.STREAMING: {
        _T.CLOSE_STREAM: _S.CLOSING,
        _T.ENGINE_FLUSHED: _S.CLOSED,  # the engine ended on its own
        _T.FATAL: _S.CLOSED,
        _T.DISCONNECT: _S.CLOSED,
    },
    _S.CLOSING: {_T.ENGINE_FLUSHED: _S.CLOSED, _T.FATAL: _S.CLOSED, _T.DISCONNECT: _S.CLOSED},
    _S.CLOSED: {_T.ENGINE_FLUSHED: _S.CLOSED, _T.FATAL: _S.CLOSED, _T.DISCONNECT: _S.CLOSED},
}


class ListenProtocolError(RuntimeError):
    """The caller asked for a move the table does not allow."""


def next_listen_state(state: ListenState, trigger: ListenTrigger) -> ListenState:
    try:
        return LISTEN_TRANSITIONS[state][trigger]
    except KeyError:
        raise ListenProtocolError(f"can't handle {trigger.value!r} when the stream is {state.value!r}") from None
