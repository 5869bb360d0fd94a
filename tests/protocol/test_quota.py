"""The quota's end of a session in each protocol, sans-I/O: the engine is closed like a stop, the finals that
follow are still sent, then the error `quota_exceeded` and close 1008. Before any audio there is nothing to
flush: the error and the close come at once."""

from __future__ import annotations

import json
from typing import Any

from voxrelay.engines.base import FinalResult
from voxrelay.protocol.actions import CloseEngine, CloseSocket, SendText
from voxrelay.protocol.deepgram_live import ListenSession, ModelInfo, parse_params
from voxrelay.protocol.openai_realtime import RealtimeSession
from voxrelay.protocol.stt_stream import Session, SttStreamCodec

AUDIO = b"\0" * 3200
FINAL = FinalResult("the last words", 0.0, 0.1, speech_final=True)


def texts(actions: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(a.text) for a in actions if isinstance(a, SendText)]


def stt() -> SttStreamCodec:
    return SttStreamCodec(Session("s1", "echo"))


def listen() -> ListenSession:
    params = parse_params([("encoding", "linear16"), ("sample_rate", "16000")])
    return ListenSession("req-1", params, ModelInfo("m", "0", "echo"), "2026-12-03T00:00:00.000Z")


def realtime() -> RealtimeSession:
    codec = RealtimeSession("sess_1")
    codec.actions()  # session.created
    return codec


def end_over_quota(codec: Any) -> tuple[list[Any], list[Any]]:
    """Stream, reach the quota, then the engine's last final and flush: (actions at the quota, actions after)."""
    codec.receive_audio(AUDIO)
    codec.engine_opened()
    codec.actions()
    codec.quota_exceeded("key-1 has used its monthly audio quota (60 s)")
    at_quota = codec.actions()
    codec.receive_audio(AUDIO)  # audio after the quota is not fed
    codec.engine_event(FINAL)
    codec.engine_flushed(0.2)
    return at_quota, codec.actions()


def test_stt_stream_sends_the_final_then_quota_exceeded_and_closes_1008() -> None:
    at_quota, after = end_over_quota(stt())
    assert [type(a) for a in at_quota] == [CloseEngine]
    messages = texts(after)
    assert [m["type"] for m in messages] == ["final_transcript", "error"]  # the quota's is the only error
    assert messages[0]["transcript"] == "the last words"
    assert messages[1] == {"type": "error", "code": "quota_exceeded",
                           "message": "key-1 has used its monthly audio quota (60 s)"}
    assert isinstance(after[-1], CloseSocket) and after[-1].code == 1008
    assert "stopped" not in [m["type"] for m in messages]


def test_stt_stream_warns_at_90_percent_and_goes_on() -> None:
    codec = stt()
    codec.receive_audio(AUDIO)
    codec.actions()
    codec.quota_warning("key-1 has used 90% of its monthly audio quota (60 s)")
    assert texts(codec.actions()) == [{"type": "warning", "code": "quota",
                                       "message": "key-1 has used 90% of its monthly audio quota (60 s)"}]
    assert codec.accepting_input


def test_listen_sends_the_last_results_then_an_error_and_closes_1008_without_metadata() -> None:
    at_quota, after = end_over_quota(listen())
    assert [type(a) for a in at_quota] == [CloseEngine]
    messages = texts(after)
    assert [m["type"] for m in messages] == ["Results", "Error"]
    assert messages[0]["is_final"] and messages[0]["channel"]["alternatives"][0]["transcript"] == "the last words"
    assert messages[1]["variant"] == "QuotaExceeded"
    assert isinstance(after[-1], CloseSocket) and after[-1].code == 1008
    assert after[-1].reason.startswith("voxrelay quota_exceeded")


def test_listen_says_nothing_at_90_percent() -> None:
    codec = listen()
    codec.quota_warning("90%")
    assert codec.actions() == []


def test_realtime_completes_the_open_turn_then_an_error_event_and_closes_1008() -> None:
    at_quota, after = end_over_quota(realtime())
    assert [type(a) for a in at_quota] == [CloseEngine]
    events = texts(after)
    types = [e["type"] for e in events]
    completed = types.index("conversation.item.input_audio_transcription.completed")
    assert events[completed]["transcript"] == "the last words"
    assert types[-1] == "error" and completed < len(types) - 1
    assert events[-1]["error"]["code"] == "quota_exceeded"
    assert events[-1]["error"]["type"] == "invalid_request_error"
    assert isinstance(after[-1], CloseSocket) and after[-1].code == 1008


def test_before_any_audio_the_quota_ends_a_session_at_once() -> None:
    for codec in (stt(), listen(), realtime()):
        codec.quota_exceeded("over")
        actions = codec.actions()
        assert isinstance(actions[-1], CloseSocket) and actions[-1].code == 1008, codec
        assert not any(isinstance(a, CloseEngine) for a in actions)
        assert codec.closed
