"""Deepgram's pre-recorded request and response, sans-I/O: no server, no event loop."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from voxrelay.protocol.deepgram_messages import ModelInfo
from voxrelay.protocol.deepgram_params import ListenRequestError
from voxrelay.protocol.deepgram_prerecorded import (
    PARAGRAPH_PAUSE_S,
    PrerecordedParams,
    ResponseMeta,
    bad_audio,
    check_body,
    parse_prerecorded_params,
    prerecorded_response,
)
from voxrelay.protocol.events import Word


@dataclass(frozen=True)
class Seg:
    """Shaped like engines.files.FileSegment (the protocol layer imports no engine)."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    avg_logprob: float = 0.0


META = ResponseMeta("req-1", "2026-12-03T07:00:00.000Z", "ab" * 32, 4.25, ModelInfo("tiny.en", "1.0", "local"))


def seg(start: float, end: float, *pairs: tuple[str, float]) -> Seg:
    """A segment whose words (punctuated, confidence) are spread evenly over it."""
    step = (end - start) / len(pairs)
    words = tuple(
        Word(p.strip(".,?!").lower(), start + i * step, start + (i + 1) * step, conf, p)
        for i, (p, conf) in enumerate(pairs)
    )
    return Seg(start, end, " ".join(p for p, _ in pairs), words)


# Request.


def test_defaults_are_deepgrams() -> None:
    params = parse_prerecorded_params([])
    assert params == PrerecordedParams()  # no punctuation, no utterances, detect the language, a file body


def test_options_are_read() -> None:
    params = parse_prerecorded_params([
        ("model", "nova-3"), ("language", "en-US"), ("smart_format", "true"), ("utterances", "1"),
        ("paragraphs", "true"), ("keyterm", "Voxrelay"), ("keywords", "Deepgram:2"), ("batch", "true"),
    ])
    assert params.model == "nova-3" and params.language == "en"
    assert params.smart_format and params.punctuate  # smart_format implies punctuation, as at Deepgram
    assert params.utterances and params.paragraphs
    assert params.prompt == "Voxrelay, Deepgram"  # keyword boosts dropped
    assert params.warnings == ()


@pytest.mark.parametrize("query", [[("language", "multi")], [("language", "de"), ("detect_language", "true")]])
def test_multi_and_detect_language_mean_detect(query: list[tuple[str, str]]) -> None:
    assert parse_prerecorded_params(query).language is None


def test_raw_linear16_needs_a_sample_rate() -> None:
    params = parse_prerecorded_params([("encoding", "linear16"), ("sample_rate", "8000"), ("channels", "2")])
    assert (params.encoding, params.sample_rate, params.channels) == ("linear16", 8000, 2)
    with pytest.raises(ListenRequestError, match="sample_rate"):
        parse_prerecorded_params([("encoding", "linear16")])
    with pytest.raises(ListenRequestError, match="linear16"):
        parse_prerecorded_params([("encoding", "opus")])


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("diarize", "true", "diarization"),
        ("callback", "https://example.com/hook", "callbacks"),
        ("summarize", "v2", "summaries"),
        ("punctuate", "maybe", "expected true or false"),
        ("language", "en_US!", "BCP-47"),
        ("sample_rate", "x", "expected an integer"),
    ],
)
def test_bad_or_refused_parameters_are_400(name: str, value: str, says: str) -> None:
    query = [(name, value)] + ([("encoding", "linear16")] if name == "sample_rate" else [])
    with pytest.raises(ListenRequestError) as caught:
        parse_prerecorded_params(query)
    assert caught.value.status == 400 and says in caught.value.message


def test_refused_features_asked_off_are_fine_and_unknown_ones_warned() -> None:
    params = parse_prerecorded_params([("diarize", "false"), ("numerals", "true"), ("utt_split", "0.8")])
    assert [w.parameter for w in params.warnings] == ["numerals", "utt_split"]


def test_a_url_body_is_refused_and_audio_is_taken() -> None:
    with pytest.raises(ListenRequestError, match="does not fetch remote URLs"):
        check_body("application/json; charset=utf-8", json.dumps({"url": "http://169.254.169.254/"}).encode())
    with pytest.raises(ListenRequestError, match="not valid JSON"):
        check_body("application/json", b"{")
    with pytest.raises(ListenRequestError, match="empty"):
        check_body("audio/wav", b"")
    check_body("application/octet-stream", b"RIFF....")
    check_body(None, b"\x00\x01")
    assert bad_audio().message == "Bad Request: failed to process audio: corrupt or unsupported data"


# Response.


def test_the_response_joins_segments_and_keeps_their_words() -> None:
    segments = [seg(0.5, 1.5, ("Hello,", 0.9), ("world.", 0.7)), seg(2.0, 3.0, ("Again.", 0.8))]
    params = PrerecordedParams(punctuate=True, utterances=True)
    body = prerecorded_response(META, params, segments)
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"] == "Hello, world. Again."
    assert alternative["confidence"] == pytest.approx(0.8)
    assert [(w["word"], w["punctuated_word"], w["start"]) for w in alternative["words"]] == [
        ("hello", "Hello,", 0.5), ("world", "world.", 1.0), ("again", "Again.", 2.0)
    ]
    utterances = body["results"]["utterances"]
    assert [(u["start"], u["end"], u["transcript"], len(u["words"])) for u in utterances] == [
        (0.5, 1.5, "Hello, world.", 2), (2.0, 3.0, "Again.", 1)
    ]
    assert [u["confidence"] for u in utterances] == [pytest.approx(0.8), pytest.approx(0.8)]
    assert body["metadata"]["duration"] == 4.25 and body["metadata"]["request_id"] == "req-1"
    assert body["metadata"]["models"] == [META.model.uuid] and "warnings" not in body["metadata"]
    assert "detected_language" not in body["results"]["channels"][0]  # the engine reported none


def test_without_punctuation_the_words_are_bare_and_there_is_no_punctuated_word() -> None:
    segments = [seg(0.0, 1.0, ("Hello,", 0.9), ("World.", 0.9)), Seg(1.0, 2.0, "No words here, OK?")]
    body = prerecorded_response(META, PrerecordedParams(), segments)
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert alternative["transcript"] == "hello world no words here ok"
    assert all("punctuated_word" not in w for w in alternative["words"])
    assert "utterances" not in body["results"]


def test_empty_segments_are_dropped_and_silence_is_an_empty_transcript() -> None:
    body = prerecorded_response(META, PrerecordedParams(utterances=True), [Seg(0.0, 1.0, "  ")])
    alternative = body["results"]["channels"][0]["alternatives"][0]
    assert (alternative["transcript"], alternative["confidence"], alternative["words"]) == ("", 0.0, [])
    assert body["results"]["utterances"] == []


def test_confidence_without_words_comes_from_the_decoders_log_probability() -> None:
    body = prerecorded_response(META, PrerecordedParams(), [Seg(0.0, 1.0, "Hi.", avg_logprob=-0.5)])
    assert body["results"]["channels"][0]["alternatives"][0]["confidence"] == pytest.approx(0.6065, abs=1e-4)


def test_paragraphs_break_at_pauses() -> None:
    gap = PARAGRAPH_PAUSE_S
    segments = [Seg(0.0, 1.0, "One."), Seg(1.2, 2.0, "Two three."), Seg(2.0 + gap, 4.0 + gap, "Four.")]
    body = prerecorded_response(META, PrerecordedParams(punctuate=True, paragraphs=True), segments)
    paragraphs = body["results"]["channels"][0]["alternatives"][0]["paragraphs"]
    assert [[s["text"] for s in p["sentences"]] for p in paragraphs["paragraphs"]] == [["One.", "Two three."], ["Four."]]
    assert [p["num_words"] for p in paragraphs["paragraphs"]] == [3, 1]
    assert paragraphs["transcript"] == "\nOne. Two three.\n\nFour.\n"


def test_a_detected_language_and_warnings_are_reported() -> None:
    meta = ResponseMeta("r", "t", "s", 1.0, META.model, language="de")
    params = parse_prerecorded_params([("tag", "x")])
    body = prerecorded_response(meta, params, [])
    assert body["results"]["channels"][0]["detected_language"] == "de"
    assert body["metadata"]["warnings"] == [
        {"parameter": "tag", "type": "unsupported_parameter", "message": "`tag` is not supported by voxrelay and was ignored."}
    ]
    # A language the client chose is not "detected".
    body = prerecorded_response(meta, parse_prerecorded_params([("language", "de")]), [])
    assert "detected_language" not in body["results"]["channels"][0]


def test_dictation_needs_punctuation_on_the_prerecorded_endpoint_too() -> None:
    assert parse_prerecorded_params([("dictation", "true"), ("punctuate", "true")]).dictation
    assert not parse_prerecorded_params([("dictation", "false")]).dictation
    with pytest.raises(ListenRequestError, match="requires punctuate=true"):
        parse_prerecorded_params([("dictation", "true")])
