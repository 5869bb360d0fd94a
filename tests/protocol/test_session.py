"""The sans-I/O session: frames and engine events in, actions out; no sockets, no loop."""

import json
from collections.abc import Callable

import pytest

from voxrelay.engines import base as ev
from voxrelay.protocol import messages as m
from voxrelay.protocol.actions import SendText
from voxrelay.protocol.codec import Codec
from voxrelay.protocol.deepgram_live import ListenSession, ModelInfo, parse_params
from voxrelay.protocol.state import SessionState
from voxrelay.protocol.stt_stream import (
    CloseEngine,
    CloseSocket,
    FeedAudio,
    FinalizeEngine,
    OpenEngine,
    SendMessage,
    Session,
    SessionLimits,
    SttStreamCodec,
)


def sent(actions: list) -> list:
    return [a.message for a in actions if isinstance(a, SendMessage)]


def opened(session: Session, text: str | None = None) -> Session:
    if text is not None:
        session.receive_text(text)
    actions = session.actions()
    assert any(isinstance(a, OpenEngine) for a in actions)
    session.engine_opened()
    assert sent(session.actions()) == [m.Ready(session.session_id, "local")]
    return session


def test_configure_opens_engine_with_format_and_options() -> None:
    s = Session("s1", "local")
    s.receive_text(json.dumps({"action": "configure", "audio_format": {"encoding": "webm"}, "endpointing": 800}))
    (action,) = s.actions()
    assert isinstance(action, OpenEngine)
    assert action.audio_format.encoding == "webm" and action.options.endpointing == 800
    assert s.state is SessionState.STREAMING


def test_audio_without_configure_uses_defaults() -> None:
    s = Session("s1", "local")
    s.receive_audio(b"\x00\x01" * 10)
    open_action, feed = s.actions()
    assert isinstance(open_action, OpenEngine) and open_action.audio_format == m.AudioFormat()
    assert feed == FeedAudio(b"\x00\x01" * 10)
    assert s.audio_bytes == 20


def test_full_lifecycle() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    s.receive_audio(b"ab")
    assert s.actions() == [FeedAudio(b"ab")]
    s.engine_event(ev.SpeechStarted(0.5))
    s.engine_event(ev.InterimResult("hello", 0.5, 1.0))
    s.engine_event(ev.FinalResult("Hello world.", 0.5, 1.5, speech_final=True))
    assert sent(s.actions()) == [
        m.SpeechStarted(0.5),
        m.InterimTranscript("hello"),
        m.FinalTranscript("Hello world.", 0.5, 1.5, True),
    ]
    s.receive_text('{"action":"finalize"}')
    assert s.actions() == [FinalizeEngine()]
    s.receive_text('{"action":"stop"}')
    assert s.actions() == [CloseEngine()]
    assert s.state is SessionState.FINALIZING
    s.engine_event(ev.FinalResult("Last word.", 2.0, 2.4, speech_final=True))
    s.engine_flushed()
    assert s.actions() == [
        SendMessage(m.FinalTranscript("Last word.", 2.0, 2.4, True)),
        SendMessage(m.Stopped()),
        CloseSocket(1000, "stopped"),
    ]
    assert s.closed and s.finals_sent == 2


def test_empty_results_are_not_sent() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    s.engine_event(ev.InterimResult("", 0, 0))
    s.engine_event(ev.FinalResult("", 0, 0, speech_final=True))
    assert s.actions() == []


def test_recoverable_mistakes_get_an_error_and_the_session_goes_on() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    for text, needle in [
        ("{oops", "not valid JSON"),
        ('{"action":"jump"}', "unknown action"),
        ('{"action":"configure"}', "first frame"),
    ]:
        s.receive_text(text)
        (message,) = sent(s.actions())
        assert isinstance(message, m.ErrorMessage) and message.code == "bad_request"
        assert needle in message.message
    assert s.state is SessionState.STREAMING


def test_unsupported_configure_is_fatal_with_1003() -> None:
    s = Session("s1", "local")
    s.receive_text('{"action":"configure","audio_format":{"encoding":"flac"}}')
    actions = s.actions()
    assert isinstance(actions[0], SendMessage) and actions[0].message.code == "unsupported_audio"
    assert actions[1] == CloseSocket(1003, actions[0].message.message[:120])
    assert s.closed


def test_invalid_configure_is_fatal_with_1008() -> None:
    s = Session("s1", "local")
    s.receive_text('{"action":"configure","endpointing":"soon"}')
    actions = s.actions()
    assert actions[0].message.code == "bad_request" and isinstance(actions[1], CloseSocket)
    assert actions[1].code == 1008


def test_oversize_frames_close_with_1009() -> None:
    limits = SessionLimits(max_text_frame=256, max_audio_frame=1024)
    s = opened(Session("s1", "local", limits), '{"action":"configure"}')
    s.receive_audio(b"x" * 1025)
    actions = s.actions()
    assert actions[0].message.code == "limit_exceeded" and actions[1].code == 1009
    s2 = Session("s2", "local", limits)
    s2.receive_text('{"action":"stop", "pad":"' + "x" * 300 + '"}')
    assert s2.actions()[1].code == 1009


def test_audio_after_stop_is_refused_but_not_fatal() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    s.receive_text('{"action":"stop"}')
    s.actions()
    s.receive_audio(b"zz")
    (message,) = sent(s.actions())
    assert message.code == "bad_request" and s.state is SessionState.FINALIZING
    s.receive_audio(b"zz")  # told once, not once per frame
    s.receive_text('{"action":"stop"}')
    assert s.actions() == []


def test_fatal_engine_error_closes_1011() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    s.engine_event(ev.EngineError("engine_error", "model crashed"))
    actions = s.actions()
    assert actions[0] == SendMessage(m.ErrorMessage("engine_error", "model crashed"))
    assert actions[1] == CloseSocket(1011, "model crashed")
    s.engine_flushed()
    assert s.actions() == []


def test_client_gone_sends_nothing() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    s.client_gone()
    s.engine_event(ev.FinalResult("late", 0, 1, True))
    s.receive_audio(b"ab")
    assert s.actions() == [] and s.closed


def test_warning_does_not_end_the_session() -> None:
    s = opened(Session("s1", "local"), '{"action":"configure"}')
    s.warn("draining", "the server restarts soon")
    assert sent(s.actions()) == [m.Warning("draining", "the server restarts soon")]
    assert not s.closed


# Every endpoint's codec, as the connection runner drives it (protocol.codec.Codec): the same
# commands in, the shared actions out; only the wire form of each decision differs.


def stt_codec() -> SttStreamCodec:
    return SttStreamCodec(Session("s1", "local"))


def listen_codec() -> ListenSession:
    params = parse_params([("encoding", "linear16"), ("sample_rate", "16000"), ("interim_results", "true")])
    return ListenSession("req-1", params, ModelInfo("tiny.en", "0.1.0", "local"), "2026-11-24T00:00:00.000Z")


CODECS = [pytest.param(stt_codec, id="stt-stream"), pytest.param(listen_codec, id="v1-listen")]


def streaming(codec: Codec) -> Codec:
    codec.receive_audio(b"\x00" * 3200)
    actions = codec.actions()
    assert isinstance(actions[0], OpenEngine) and actions[-1] == FeedAudio(b"\x00" * 3200)
    codec.engine_opened()
    codec.actions()
    assert codec.accepting_input and not codec.closed and codec.audio_bytes == 3200
    return codec


@pytest.mark.parametrize("make", CODECS)
@pytest.mark.parametrize("close_code", [1008, 1009])
def test_a_limit_is_an_error_then_the_runners_close_code(make: Callable[[], Codec], close_code: int) -> None:
    codec = streaming(make())
    codec.limit_exceeded("audio frame larger than 8192 bytes", close_code)
    error, close = codec.actions()
    assert isinstance(error, SendText) and (error.kind, error.code) == ("error", "limit_exceeded")
    assert "8192" in error.text
    assert isinstance(close, CloseSocket) and close.code == close_code and codec.closed
    codec.receive_audio(b"\x00" * 10)
    assert codec.actions() == []  # nothing after the close


@pytest.mark.parametrize("make", CODECS)
def test_sends_are_tagged_for_the_metrics(make: Callable[[], Codec]) -> None:
    codec = streaming(make())
    codec.engine_event(ev.InterimResult("hello", 0.0, 0.5))
    codec.engine_event(ev.FinalResult("hello there", 0.0, 1.0, True))
    codec.engine_event(ev.EngineError("engine_error", "hiccup", fatal=False))
    kinds = [(a.kind, a.code) for a in codec.actions() if isinstance(a, SendText)]
    assert kinds == [("interim", None), ("final", None), ("error", "engine_error")]
    assert not codec.closed


@pytest.mark.parametrize("make", CODECS)
def test_a_drain_closes_the_engine_after_the_audio_then_closes_1000(make: Callable[[], Codec]) -> None:
    codec = streaming(make())
    codec.receive_audio(b"\x01" * 320)  # read before the drain: fed before the engine closes
    codec.drain()
    actions = codec.actions()
    assert actions.index(FeedAudio(b"\x01" * 320)) < actions.index(CloseEngine())
    codec.engine_event(ev.FinalResult("the end", 0.0, 1.0, True))
    codec.engine_flushed(0.11)
    actions = codec.actions()
    assert next(a.kind for a in actions if isinstance(a, SendText)) == "final"
    assert isinstance(actions[-1], CloseSocket) and actions[-1].code == 1000


@pytest.mark.parametrize(("make", "close_code", "error_sent"), [(stt_codec, 1008, True), (listen_codec, 1011, False)])
def test_idle_timeout_in_each_wire_form(make: Callable[[], Codec], close_code: int, error_sent: bool) -> None:
    codec = make()
    assert codec.accepting_input
    codec.idle_timeout("no audio or message for 3 s; the session was closed")
    actions = codec.actions()
    assert isinstance(actions[-1], CloseSocket) and actions[-1].code == close_code and codec.closed
    assert any(isinstance(a, SendText) and a.kind == "error" for a in actions) is error_sent
    # Counted once either way: with the error message, or (no message) by the close itself.
    assert (actions[-1].error is not None) is not error_sent


@pytest.mark.parametrize("make", CODECS)
def test_engine_failures_and_bad_audio_are_fatal(make: Callable[[], Codec]) -> None:
    codec = streaming(make())
    codec.fail("engine_unavailable", "upstream is down")
    error, close = codec.actions()
    assert isinstance(error, SendText) and error.code == "engine_unavailable" and close.code == 1011
    codec = streaming(make())
    codec.audio_error("could not decode webm audio")
    error, close = codec.actions()
    assert isinstance(error, SendText) and error.code == "unsupported_audio" and close.code in (1003, 1008)


@pytest.mark.parametrize("make", CODECS)
def test_a_client_that_goes_away_gets_nothing(make: Callable[[], Codec]) -> None:
    codec = streaming(make())
    codec.client_gone()
    assert codec.closed and codec.actions() == [] and not codec.accepting_input
