"""Deepgram's Live JSON -> engine events (`engines.deepgram.events`): pure, no connection.

Every message here is first validated against deepgram-sdk's own models, so the shapes
are Deepgram's, not ours.
"""

from __future__ import annotations

from typing import Any

import pytest
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results, ListenV1SpeechStarted, ListenV1UtteranceEnd

from voxrelay.engines.base import EngineError, FinalResult, InterimResult, SpeechStarted, UtteranceEnd, Word
from voxrelay.engines.deepgram.events import engine_event, error_text, shifted

RESULTS: dict[str, Any] = {
    "type": "Results",
    "channel_index": [0, 1],
    "start": 1.5,
    "duration": 0.75,
    "is_final": True,
    "speech_final": True,
    "from_finalize": False,
    "channel": {
        "alternatives": [
            {
                "transcript": "Hello there.",
                "confidence": 0.9,
                "words": [
                    {"word": "hello", "start": 1.5, "end": 1.8, "confidence": 0.95, "punctuated_word": "Hello"},
                    {"word": "there", "start": 1.9, "end": 2.2, "confidence": 0.85},
                ],
            }
        ]
    },
    "metadata": {
        "request_id": "2d6f1a3e-0000-4000-8000-000000000000",
        "model_info": {"name": "2-general-nova", "version": "2024-01-18.26916", "arch": "nova-3"},
        "model_uuid": "c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c",
    },
}
SPEECH_STARTED = {"type": "SpeechStarted", "channel": [0], "timestamp": 0.5}
UTTERANCE_END = {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 2.2}
METADATA = {
    "type": "Metadata",
    "transaction_key": "deprecated",
    "request_id": "2d6f1a3e-0000-4000-8000-000000000000",
    "sha256": "0" * 64,
    "created": "2026-12-03T02:50:00.000Z",
    "duration": 2.5,
    "channels": 1,
    "models": ["c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c"],
    "model_info": {"c0d1a568-ce81-4fea-97e7-bd45cb1fdf3c": {"name": "n", "version": "v", "arch": "a"}},
}


def test_the_messages_here_are_deepgrams_shapes() -> None:
    ListenV1Results.model_validate(RESULTS)
    ListenV1SpeechStarted.model_validate(SPEECH_STARTED)
    ListenV1UtteranceEnd.model_validate(UTTERANCE_END)
    ListenV1Metadata.model_validate(METADATA)


def test_a_final_results_becomes_a_final_with_words() -> None:
    final = engine_event("Results", RESULTS)
    assert isinstance(final, FinalResult) and final.transcript == "Hello there."
    assert (final.start, final.end, final.speech_final, final.from_finalize) == (1.5, 2.25, True, False)
    assert final.confidence == 0.9
    # punctuated_word is optional: the plain word stands in.
    assert [(w.word, w.punctuated_word) for w in final.words] == [("hello", "Hello"), ("there", "there")]
    assert final.words[0] == Word("hello", 1.5, 1.8, 0.95, "Hello")


def test_words_are_mapped_only_when_asked_for() -> None:
    final = engine_event("Results", RESULTS, with_words=False)
    assert isinstance(final, FinalResult) and final.words == () and final.transcript == "Hello there."


def test_an_interim_results_and_the_vad_messages() -> None:
    interim = engine_event("Results", {**RESULTS, "is_final": False, "from_finalize": True})
    assert isinstance(interim, InterimResult) and (interim.start, interim.end) == (1.5, 2.25)
    assert engine_event("SpeechStarted", SPEECH_STARTED) == SpeechStarted(0.5)
    assert engine_event("UtteranceEnd", UTTERANCE_END) == UtteranceEnd(2.2)


def test_an_empty_alternative_list_is_an_empty_result() -> None:
    empty = engine_event("Results", {**RESULTS, "channel": {"alternatives": []}})
    assert isinstance(empty, FinalResult) and empty.transcript == "" and empty.confidence == 0.0 and empty.words == ()


def test_messages_without_an_event_map_to_none() -> None:
    assert engine_event("Metadata", METADATA) is None
    assert engine_event(None, {"unexpected": True}) is None


@pytest.mark.parametrize(
    "broken",
    [{"type": "Results"}, {**RESULTS, "start": "soon"}, {"type": "SpeechStarted"}],
    ids=["no-channel", "bad-start", "no-timestamp"],
)
def test_a_malformed_message_raises_for_the_reader_to_skip(broken: dict[str, Any]) -> None:
    with pytest.raises((KeyError, ValueError)):
        engine_event(broken["type"], broken)


def test_an_error_message_is_described() -> None:
    text = error_text({"type": "Error", "description": "bad audio", "message": "details"})
    assert text == "Deepgram reported an error: bad audio"
    assert error_text({"type": "Error", "message": "only this"}).endswith("only this")


def test_shifted_moves_every_timestamp_into_session_time() -> None:
    final = engine_event("Results", RESULTS)
    assert isinstance(final, FinalResult)
    moved = shifted(final, 10.0)
    assert isinstance(moved, FinalResult) and (moved.start, moved.end) == (11.5, 12.25)
    assert [(w.start, w.end) for w in moved.words] == [(11.5, 11.8), (11.9, 12.2)]
    assert moved.transcript == final.transcript and moved.speech_final
    assert shifted(SpeechStarted(0.5), 2.0) == SpeechStarted(2.5)
    assert shifted(UtteranceEnd(2.2), 1.0) == UtteranceEnd(3.2)
    error = EngineError("engine_error", "x")
    assert shifted(error, 5.0) is error and shifted(final, 0.0) is final
