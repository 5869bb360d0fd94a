import pytest

from voxrelay.protocol.state import TRANSITIONS, LocalProtocolError, SessionState, Trigger, next_state


def test_happy_path() -> None:
    state = SessionState.CONFIGURING
    for trigger, expected in [
        (Trigger.CONFIGURE, SessionState.STREAMING),
        (Trigger.AUDIO, SessionState.STREAMING),
        (Trigger.FINALIZE, SessionState.STREAMING),
        (Trigger.STOP, SessionState.FINALIZING),
        (Trigger.ENGINE_FLUSHED, SessionState.CLOSED),
    ]:
        state = next_state(state, trigger)
        assert state is expected


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (SessionState.STREAMING, Trigger.CONFIGURE),
        (SessionState.FINALIZING, Trigger.AUDIO),
        (SessionState.FINALIZING, Trigger.STOP),
        (SessionState.CLOSED, Trigger.AUDIO),
        (SessionState.CONFIGURING, Trigger.ENGINE_FLUSHED),
    ],
)
def test_illegal_moves_raise(state: SessionState, trigger: Trigger) -> None:
    with pytest.raises(LocalProtocolError, match=trigger.value):
        next_state(state, trigger)


def test_every_state_can_close() -> None:
    for state in SessionState:
        assert TRANSITIONS[state][Trigger.DISCONNECT] is SessionState.CLOSED
        assert TRANSITIONS[state][Trigger.FATAL] is SessionState.CLOSED
