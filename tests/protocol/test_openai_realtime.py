"""The OpenAI Realtime transcription codec, synchronously: client events and engine events in, actions out.

Every server event any test produces is validated strictly by the `openai` SDK's own types.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openai._models import validate_type
from openai.types.realtime import RealtimeServerEvent

from voxrelay.engines.base import EngineError, FinalResult, InterimResult, SpeechStarted
from voxrelay.protocol.actions import CloseEngine, CloseSocket, FeedAudio, FinalizeEngine, OpenEngine, SendText
from voxrelay.protocol.openai_realtime import RealtimeSession, endpointing_ms
from voxrelay.protocol.openai_realtime_messages import RealtimeConfig

PCM_100MS = b"\0\0" * 2400  # 100 ms of 24 kHz linear16


def strict(event: dict[str, Any]) -> Any:
    """The SDK's strict validation (not its lenient parsing, which accepts almost anything)."""
    parsed = validate_type(type_=RealtimeServerEvent, value=event)  # type: ignore[arg-type]
    if event["type"] in ("session.created", "session.updated"):
        assert type(parsed.session).__name__ == "RealtimeTranscriptionSessionCreateRequest", event
    return parsed


def sent(session: RealtimeSession) -> list[dict[str, Any]]:
    """The events the last calls queued (strictly valid), in order; other actions are dropped."""
    events = [json.loads(a.text) for a in session.actions() if isinstance(a, SendText)]
    for event in events:
        strict(event)
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def update(session: RealtimeSession, event_id: str | None = None, **audio_input: Any) -> list[dict[str, Any]]:
    event: dict[str, Any] = {"type": "session.update", "session": {"type": "transcription",
                                                                     "audio": {"input": audio_input}}}
    if event_id:
        event["event_id"] = event_id
    assert session.receive_text(json.dumps(event)) is None
    return sent(session)


def append(session: RealtimeSession, audio: bytes) -> list[Any]:
    """An append as the runner does it: the codec hands the audio back, the runner feeds it in."""
    carried = session.receive_text(json.dumps({"type": "input_audio_buffer.append",
                                               "audio": base64.b64encode(audio).decode()}))
    assert carried == audio
    session.receive_audio(carried)
    return session.actions()


def test_session_created_is_queued_at_once_and_strictly_valid() -> None:
    session = RealtimeSession("sess_abc")
    [created] = sent(session)
    assert created["type"] == "session.created" and created["session"]["id"] == "sess_abc"
    audio_input = created["session"]["audio"]["input"]
    assert audio_input["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_input["turn_detection"]["type"] == "server_vad"  # OpenAI's default


def test_update_merges_and_echoes_what_is_in_force() -> None:
    session = RealtimeSession("s")
    session.actions()
    [updated] = update(session, transcription={"model": "gpt-4o-transcribe", "language": "en", "prompt": "p"})
    [again] = update(session, format={"type": "audio/pcmu"}, turn_detection=None)
    echoed = again["session"]["audio"]["input"]
    assert updated["type"] == again["type"] == "session.updated"
    assert echoed["transcription"]["language"] == "en" and echoed["transcription"]["model"] == "gpt-4o-transcribe"
    assert echoed["format"] == {"type": "audio/pcmu"} and echoed["turn_detection"] is None
    assert session.audio_format.encoding == "mulaw" and session.audio_format.sample_rate == 8000
    assert session.stream_options().language == "en"


@pytest.mark.parametrize(
    ("audio_input", "param"),
    [
        ({"format": {"type": "audio/pcm", "rate": 16000}}, "session.audio.input.format.rate"),
        ({"format": {"type": "audio/opus"}}, "session.audio.input.format"),
        ({"turn_detection": {"type": "server_vad", "threshold": 2}}, "session.audio.input.turn_detection.threshold"),
        ({"transcription": {"modle": "x"}}, "session.audio.input.transcription.modle"),
    ],
)
def test_an_invalid_update_is_an_error_naming_the_field_and_the_session_goes_on(
    audio_input: dict[str, Any], param: str
) -> None:
    session = RealtimeSession("s")
    session.actions()
    [error] = update(session, "client_1", **audio_input)
    assert error["type"] == "error" and error["error"]["event_id"] == "client_1"
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["param"] == param
    assert session.config == RealtimeConfig(type="transcription")  # unchanged
    assert types(update(session, format={"type": "audio/pcma"})) == ["session.updated"]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1]", "invalid_json"),
        ('{"type": "response.create"}', "invalid_value"),
        ('{"type": "transcription_session.update", "session": {}}', "invalid_value"),
        ('{"type": "input_audio_buffer.append", "audio": "***", "event_id": "e9"}', "invalid_value"),
        ('{"type": "input_audio_buffer.append"}', "missing_required_parameter"),
        ('{"type": "session.update", "session": {"audio": {}}}', "missing_required_parameter"),
    ],
)
def test_bad_events_are_errors_and_the_session_survives(text: str, code: str) -> None:
    session = RealtimeSession("s")
    session.actions()
    assert session.receive_text(text) is None
    [error] = sent(session)
    assert error["type"] == "error" and error["error"]["code"] == code
    if '"e9"' in text:
        assert error["error"]["event_id"] == "e9"
    assert not session.closed
    assert any(isinstance(a, OpenEngine) for a in append(session, PCM_100MS))


def test_a_server_vad_turn_is_one_item_from_speech_started_to_completed() -> None:
    session = RealtimeSession("s", min_endpointing_ms=200)
    session.actions()
    actions = append(session, PCM_100MS)
    [opened] = [a for a in actions if isinstance(a, OpenEngine)]
    assert opened.audio_format.encoding == "linear16" and opened.audio_format.sample_rate == 24000
    assert opened.options.endpointing == 500 and isinstance(actions[-1], FeedAudio)
    items = []
    for start, words in ((1.0, ["hello", "hello wor", "hello world"]), (4.0, ["again"])):
        session.engine_event(SpeechStarted(start))
        for interim in words:
            session.engine_event(InterimResult(interim, start, start + 1.0))
        session.engine_event(FinalResult(words[-1] + ".", start, start + 1.5, speech_final=True))
        events = sent(session)
        assert types(events) == [
            "input_audio_buffer.speech_started",
            *["conversation.item.input_audio_transcription.delta"] * len(words),
            "conversation.item.input_audio_transcription.delta",  # the final's "."
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.completed",
        ]
        assert len({e["item_id"] for e in events}) == 1
        deltas = "".join(e["delta"] for e in events if e["type"].endswith(".delta"))
        assert deltas == events[-1]["transcript"] == words[-1] + "."
        assert events[0]["audio_start_ms"] == start * 1000 and events[-3]["audio_end_ms"] == (start + 1.5) * 1000
        assert events[-1]["usage"] == {"type": "duration", "seconds": 1.5}
        items.append(events)
    assert items[1][-2]["previous_item_id"] == items[0][-1]["item_id"] != items[1][-1]["item_id"]
    assert items[0][-2]["previous_item_id"] is None


def test_a_rewritten_interim_sends_no_delta_and_completed_is_authoritative() -> None:
    session = RealtimeSession("s")
    session.actions()
    update(session, turn_detection=None)
    append(session, PCM_100MS * 3)
    session.engine_event(InterimResult("I scream", 0.0, 0.3))
    session.engine_event(InterimResult("ice cream", 0.0, 0.3))  # rewrites what was sent: held back
    session.engine_event(InterimResult("ice cream and cake", 0.0, 0.3))
    [first] = sent(session)
    assert first["delta"] == "I scream"
    session.receive_text('{"type": "input_audio_buffer.commit"}')
    session.engine_event(FinalResult("Ice cream and cake.", 0.0, 0.3, speech_final=True, from_finalize=True))
    events = sent(session)
    assert types(events) == ["input_audio_buffer.committed", "conversation.item.input_audio_transcription.completed"]
    assert events[-1]["transcript"] == "Ice cream and cake."


def test_manual_commit_finalizes_the_engine_and_its_answer_completes_the_item() -> None:
    session = RealtimeSession("s")
    session.actions()
    update(session, turn_detection=None)
    session.receive_text('{"type": "input_audio_buffer.commit", "event_id": "c0"}')
    [empty] = sent(session)
    assert empty["error"]["code"] == "input_audio_buffer_commit_empty" and empty["error"]["event_id"] == "c0"
    append(session, PCM_100MS * 10)
    session.engine_event(FinalResult("first part", 0.0, 0.5, speech_final=True))  # the engine's own segment
    assert types(sent(session)) == ["conversation.item.input_audio_transcription.delta"]  # no VAD: no turn end
    session.receive_text('{"type": "input_audio_buffer.commit"}')
    actions = session.actions()
    assert FinalizeEngine(ends_turn=True) in actions
    [committed] = [json.loads(a.text) for a in actions if isinstance(a, SendText)]
    session.engine_event(FinalResult("second part", 0.5, 1.0, speech_final=True, from_finalize=True))
    *deltas, completed = sent(session)
    assert completed["transcript"] == "first part second part" and completed["item_id"] == committed["item_id"]
    assert [d["delta"] for d in deltas] == [" second part"]
    session.receive_text('{"type": "input_audio_buffer.commit"}')  # nothing appended since
    assert sent(session)[0]["error"]["code"] == "input_audio_buffer_commit_empty"


def test_an_empty_answer_to_a_commit_completes_with_an_empty_transcript() -> None:
    session = RealtimeSession("s")
    session.actions()
    update(session, turn_detection=None)
    append(session, PCM_100MS * 2)
    session.receive_text('{"type": "input_audio_buffer.commit"}')
    session.actions()
    session.engine_event(FinalResult("", 0.2, 0.2, speech_final=True, from_finalize=True))
    [completed] = sent(session)
    assert completed["transcript"] == "" and completed["type"].endswith(".completed")


def test_clear_drops_the_uncommitted_turn() -> None:
    session = RealtimeSession("s")
    session.actions()
    append(session, PCM_100MS * 5)
    session.engine_event(SpeechStarted(0.1))
    session.engine_event(InterimResult("dropped", 0.1, 0.4))
    dropped_item = sent(session)[0]["item_id"]
    session.receive_text('{"type": "input_audio_buffer.clear"}')
    actions = session.actions()
    assert FinalizeEngine() in actions and FinalizeEngine(ends_turn=True) not in actions
    assert [json.loads(a.text)["type"] for a in actions if isinstance(a, SendText)] == ["input_audio_buffer.cleared"]
    session.engine_event(FinalResult("dropped words", 0.1, 0.5, speech_final=True, from_finalize=True))
    assert sent(session) == []  # its answer is dropped: no completed
    session.engine_event(SpeechStarted(1.0))
    session.engine_event(FinalResult("kept", 1.0, 1.5, speech_final=True))
    events = sent(session)
    assert events[-1]["transcript"] == "kept" and events[-1]["item_id"] != dropped_item


def test_the_format_is_fixed_once_audio_arrives_but_turn_detection_may_change() -> None:
    session = RealtimeSession("s")
    session.actions()
    append(session, PCM_100MS)
    [error] = update(session, "u1", format={"type": "audio/pcmu"})
    assert error["error"]["code"] == "session_update_after_audio" and error["error"]["event_id"] == "u1"
    assert types(update(session, turn_detection=None)) == ["session.updated"]


@pytest.mark.parametrize(
    ("turn_detection", "min_ms", "expected"),
    [
        ({"type": "server_vad", "silence_duration_ms": 800}, 0, 800),
        ({"type": "server_vad", "silence_duration_ms": 50}, 200, 200),
        ({"type": "semantic_vad", "eagerness": "low"}, 0, 1000),
        ({"type": "semantic_vad"}, 0, 500),
        (None, 0, 500),
    ],
)
def test_turn_detection_maps_to_the_engines_endpointing(
    turn_detection: dict[str, Any] | None, min_ms: int, expected: int
) -> None:
    config = RealtimeConfig.model_validate(
        {"type": "transcription", "audio": {"input": {"turn_detection": turn_detection}}}
    )
    assert endpointing_ms(config, min_ms) == expected


def test_a_drain_flushes_the_engine_and_completes_the_open_turn() -> None:
    session = RealtimeSession("s")
    session.actions()
    append(session, PCM_100MS * 4)
    session.engine_event(InterimResult("half a", 0.0, 0.4))
    sent(session)
    session.drain()
    assert session.actions() == [CloseEngine()]
    session.engine_event(FinalResult("half a sentence", 0.0, 0.4, speech_final=False))
    session.engine_flushed(0.4)
    actions = session.actions()
    events = [json.loads(a.text) for a in actions if isinstance(a, SendText)]
    assert types(events)[-2:] == ["input_audio_buffer.committed", "conversation.item.input_audio_transcription.completed"]
    assert events[-1]["transcript"] == "half a sentence" and actions[-1] == CloseSocket(1000, "")
    assert session.closed


def test_fatal_problems_send_an_error_then_close() -> None:
    session = RealtimeSession("s")
    session.actions()
    session.limit_exceeded("audio frame larger than 8192 bytes", 1009)
    actions = session.actions()
    error = json.loads(actions[0].text)  # type: ignore[union-attr]
    strict(error)
    assert "8192" in error["error"]["message"] and isinstance(actions[1], CloseSocket) and actions[1].code == 1009
    other = RealtimeSession("t")
    other.actions()
    append(other, PCM_100MS)
    other.engine_event(EngineError("engine_error", "it broke"))
    actions = other.actions()
    assert json.loads(actions[0].text)["error"]["type"] == "server_error"  # type: ignore[union-attr]
    assert isinstance(actions[-1], CloseSocket) and actions[-1].code == 1011
    other.engine_event(InterimResult("late", 0, 1))
    assert other.actions() == []


def test_a_commit_mid_speech_under_vad_stops_the_turn_first() -> None:
    session = RealtimeSession("s")
    session.actions()
    append(session, PCM_100MS * 10)  # 1 s received
    session.engine_event(SpeechStarted(0.2))
    session.receive_text('{"type": "input_audio_buffer.commit"}')
    events = sent(session)
    assert types(events) == ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                             "input_audio_buffer.committed"]
    assert events[1]["audio_end_ms"] == 1000 and len({e["item_id"] for e in events}) == 1
    session.engine_event(FinalResult("words", 0.2, 0.9, speech_final=True, from_finalize=True))
    assert types(sent(session))[-1] == "conversation.item.input_audio_transcription.completed"


def test_speech_started_opens_the_turn_an_empty_interim_began() -> None:
    session = RealtimeSession("s")
    session.actions()
    append(session, PCM_100MS * 5)
    session.engine_event(InterimResult("", 0.0, 0.1))  # an interim with no words yet
    session.engine_event(SpeechStarted(0.1))
    session.engine_event(InterimResult("hi", 0.1, 0.3))
    session.engine_event(SpeechStarted(0.2))  # the same turn: said once
    events = sent(session)
    assert types(events) == ["input_audio_buffer.speech_started", "conversation.item.input_audio_transcription.delta"]
    assert events[0]["item_id"] == events[1]["item_id"]
