"""Garbage in: the control-message parser and the session state machine give clear errors and never crash.

10,000 hypothesis cases for the parser; a stateful test drives `Session` with any sequence of
client frames and engine events and checks its invariants after every step.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from voxrelay.engines import base
from voxrelay.protocol import messages as m
from voxrelay.protocol.state import SessionState
from voxrelay.protocol.stt_stream import CloseSocket, FeedAudio, OpenEngine, SendMessage, Session, SessionLimits

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
_actions = st.sampled_from(["configure", "stop", "finalize", "sing", "", None, 3])
_messages = st.fixed_dictionaries(
    {"action": _actions},
    optional={
        "audio_format": _json | st.fixed_dictionaries({}, optional={"encoding": st.text(max_size=9) | _json,
                                                                   "sample_rate": _json, "channels": _json}),
        "model": _json, "language": _json, "interim_results": _json, "endpointing": _json, "keyterms": _json,
    },
).map(json.dumps)
_frames = st.text(max_size=200) | _json.map(json.dumps) | _messages


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_frames)
def test_parser_accepts_or_gives_a_clear_error(text: str) -> None:
    try:
        message = m.parse_client_text(text)
    except m.ProtocolError as exc:
        assert exc.code in ("bad_request", "unsupported_audio", "limit_exceeded")
        assert exc.message and len(exc.message) < 2000
    else:
        assert isinstance(message, (m.Configure, m.Finalize, m.Stop))


class SessionMachine(RuleBasedStateMachine):
    """Any interleaving of client frames, engine events and server calls keeps the session sane."""

    def __init__(self) -> None:
        super().__init__()
        self.session = Session("s", "fake", SessionLimits(max_text_frame=512, max_audio_frame=1024))
        self.closes: list[CloseSocket] = []
        self.opened = 0
        self.fed = 0

    def run(self) -> None:
        for action in self.session.actions():
            if isinstance(action, CloseSocket):
                self.closes.append(action)
            elif isinstance(action, OpenEngine):
                self.opened += 1
            elif isinstance(action, FeedAudio):
                self.fed += len(action.data)
            elif isinstance(action, SendMessage):
                m.encode(action.message)  # every message the session sends can be encoded

    @rule(text=_frames)
    def text(self, text: str) -> None:
        self.session.receive_text(text)
        self.run()

    @rule(data=st.binary(max_size=1500))
    def audio(self, data: bytes) -> None:
        self.session.receive_audio(data)
        self.run()

    @rule()
    def engine_opened(self) -> None:
        if self.opened:
            self.session.engine_opened()
            self.run()

    @rule(text=st.text(max_size=30), fatal=st.booleans(), kind=st.integers(0, 5))
    def engine_event(self, text: str, fatal: bool, kind: int) -> None:
        events = [
            base.InterimResult(text, 0.0, 1.0),
            base.FinalResult(text, 0.0, 1.0, speech_final=True),
            base.SpeechStarted(0.0),
            base.UtteranceEnd(1.0),
            base.EngineError("engine_error", text or "x", fatal=fatal),
            base.EngineWarning("reconnecting", text),
        ]
        self.session.engine_event(events[kind])
        self.run()

    @rule()
    def flushed(self) -> None:
        if self.session.state in (SessionState.STREAMING, SessionState.FINALIZING):
            self.session.engine_flushed()
            self.run()

    @rule()
    def drain(self) -> None:
        self.session.stop()
        self.run()

    @rule()
    def gone(self) -> None:
        self.session.client_gone()
        self.run()

    @invariant()
    def at_most_one_close_and_one_engine(self) -> None:
        assert len(self.closes) <= 1
        assert self.opened <= 1
        assert self.fed == self.session.audio_bytes
        if self.closes:
            assert self.session.closed
            assert 1000 <= self.closes[0].code <= 1014


SessionMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
test_session_state_machine = SessionMachine.TestCase
