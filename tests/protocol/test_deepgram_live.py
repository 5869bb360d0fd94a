"""Deepgram's Live API wire format, without sockets: parameters, auth, control messages, Results/Metadata JSON."""

from __future__ import annotations

import json

import pytest

from voxrelay.engines.base import Word
from voxrelay.protocol.deepgram_live import (
    CloseStream,
    Configure,
    ControlError,
    Finalize,
    KeepAlive,
    ListenRequestError,
    MetadataMessage,
    ModelInfo,
    ParamWarning,
    ResultsMessage,
    SpeechStartedMessage,
    UtteranceEndMessage,
    authorized,
    encode,
    parse_control,
    parse_params,
    pick_subprotocol,
)


def q(**params: object) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        for v in value if isinstance(value, list) else [value]:
            items.append((name, str(v).lower() if isinstance(v, bool) else str(v)))
    return items


# Parameters.


def test_defaults_are_deepgrams() -> None:
    params = parse_params([])
    o = params.options
    assert params.encoding is None and params.sample_rate is None and params.channels == 1
    assert (o.interim_results, o.vad_events, o.punctuate, o.smart_format) == (False, False, False, False)
    assert o.utterance_end_ms is None and o.keyterms == () and o.model is None and o.language is None
    assert o.endpointing == 300  # Deepgram's 10 ms would hand Whisper single words; documented
    assert params.warnings == ()


def test_supported_parameters_are_read() -> None:
    params = parse_params(
        q(
            model="nova-3",
            language="en-US",
            encoding="linear16",
            sample_rate=44100,
            channels=2,
            interim_results=True,
            endpointing=500,
            utterance_end_ms=1000,
            vad_events=True,
            smart_format=True,
            keyterm=["voxrelay", "Deepgram"],
            keywords=["Whisper:2.5"],
        )
    )
    o = params.options
    assert (params.encoding, params.sample_rate, params.channels) == ("linear16", 44100, 2)
    assert o.model == "nova-3" and o.language == "en"
    assert o.interim_results and o.vad_events and o.smart_format and o.punctuate  # smart_format implies punctuate
    assert o.endpointing == 500 and o.utterance_end_ms == 1000
    assert o.keyterms == ("voxrelay", "Deepgram", "Whisper")  # keyword boosts are dropped


def test_endpointing_false_and_floor() -> None:
    assert parse_params(q(endpointing=False)).options.endpointing == 10000
    raised = parse_params(q(endpointing=10), min_endpointing_ms=200)
    assert raised.options.endpointing == 200
    assert [w.parameter for w in raised.warnings] == ["endpointing"]
    assert parse_params(q(endpointing=10)).options.endpointing == 10  # engines on raw audio get what was asked


def test_language_multi_means_detect() -> None:
    assert parse_params(q(language="multi")).options.language is None


@pytest.mark.parametrize(
    ("params", "words"),
    [
        (q(encoding="mulaw", sample_rate=8000), "Unsupported encoding 'mulaw'"),
        (q(encoding="wav"), "unknown encoding"),
        (q(encoding="linear16"), "`sample_rate`"),
        (q(encoding="linear16", sample_rate=4000), "outside 8000..48000"),
        (q(encoding="linear16", sample_rate=16000, channels=3), "`channels`"),
        (q(interim_results="maybe"), "`interim_results`"),
        (q(endpointing="soon"), "`endpointing`"),
        (q(utterance_end_ms=100), "`utterance_end_ms`"),
        (q(language="english please"), "`language`"),
        (q(keyterm="x" * 101), "`keyterms`"),
        (q(diarize=True), "speaker diarization"),
        (q(diarize_model="latest"), "speaker diarization"),
        (q(multichannel=True), "per-channel"),
        (q(redact="pci"), "redaction"),
        (q(replace="a:b"), "replacement"),
        (q(search="x"), "search"),
        (q(detect_entities=True), "entity"),
        (q(callback="https://example.com/hook"), "callbacks"),
    ],
)
def test_bad_or_refused_parameters_are_400(params: list[tuple[str, str]], words: str) -> None:
    with pytest.raises(ListenRequestError) as refused:
        parse_params(params)
    assert refused.value.status == 400 and words in refused.value.message
    body = refused.value.body("req-1")
    assert body == {"err_code": "Bad Request", "err_msg": refused.value.message, "request_id": "req-1"}


def test_refused_features_turned_off_are_accepted() -> None:
    params = parse_params(q(diarize=False, multichannel=False, redact=False, detect_entities=False))
    assert params.warnings == ()


def test_harmless_unsupported_parameters_become_warnings() -> None:
    params = parse_params(q(numerals=True, tag="demo", profanity_filter=True, brand_new_feature=1))
    assert [w.parameter for w in params.warnings] == ["numerals", "tag", "profanity_filter", "brand_new_feature"]
    assert all(isinstance(w, ParamWarning) and "ignored" in w.message for w in params.warnings)


def test_container_encodings() -> None:
    assert parse_params(q(encoding="opus", sample_rate=48000)).encoding == "opus"
    assert parse_params(q(encoding="ogg-opus")).encoding == "ogg-opus"
    assert parse_params(q(sample_rate=16000)).sample_rate is None  # only read with an encoding, as at Deepgram


# Auth.


@pytest.mark.parametrize(
    ("authorization", "protocol", "ok"),
    [
        ("Token key-a", None, True),
        ("token key-b", None, True),
        ("Bearer key-a", None, True),
        ("Token wrong", None, False),
        ("key-a", None, False),
        (None, "token, key-b", True),
        (None, "token, wrong", False),
        (None, "key-a", False),
        (None, None, False),
    ],
)
def test_authorized(authorization: str | None, protocol: str | None, ok: bool) -> None:
    assert authorized(authorization, protocol, ["key-a", "key-b"]) is ok


def test_no_keys_means_open() -> None:
    assert authorized(None, None, [])


def test_subprotocol_echoes_the_scheme_browsers_offer() -> None:
    assert pick_subprotocol("token, key-a") == "token"
    assert pick_subprotocol("bearer, eyJ") == "bearer"
    assert pick_subprotocol("chat") is None and pick_subprotocol(None) is None


# Control messages.


def test_control_messages() -> None:
    assert parse_control('{"type": "KeepAlive"}') == KeepAlive()
    assert parse_control('{"type": "Finalize"}') == Finalize()
    assert parse_control('{"type": "CloseStream"}') == CloseStream()
    assert parse_control('{"type": "Configure", "keyterms": ["x"]}') == Configure()


@pytest.mark.parametrize("text", ["hello", "[]", '{"type": "Stop"}', "{}", '{"type": 3}'])
def test_bad_control_messages(text: str) -> None:
    with pytest.raises(ControlError):
        parse_control(text)


# Server messages.

MODEL = ModelInfo("tiny.en", "0.1.0", "local")


def test_results_json_is_shaped_like_deepgrams() -> None:
    words = (Word("hello", 0.1, 0.4, 0.91, "Hello"), Word("world", 0.5, 0.9, 0.87, "world."))
    data = json.loads(encode(ResultsMessage("req", MODEL, 0.0, 1.2345, True, True, False, "Hello world.", 0.89, words)))
    assert list(data) == [
        "type",
        "channel_index",
        "duration",
        "start",
        "is_final",
        "speech_final",
        "channel",
        "metadata",
        "from_finalize",
    ]
    assert data["type"] == "Results" and data["channel_index"] == [0, 1] and data["duration"] == 1.234
    [alternative] = data["channel"]["alternatives"]
    assert alternative["transcript"] == "Hello world." and alternative["confidence"] == 0.89
    assert alternative["words"][1] == {
        "word": "world",
        "start": 0.5,
        "end": 0.9,
        "confidence": 0.87,
        "punctuated_word": "world.",
    }
    assert data["metadata"] == {
        "request_id": "req",
        "model_info": {"name": "tiny.en", "version": "0.1.0", "arch": "local"},
        "model_uuid": MODEL.uuid,
    }


def test_metadata_speech_started_utterance_end() -> None:
    meta = json.loads(
        encode(
            MetadataMessage(
                "req", MODEL, "ab" * 32, "2026-01-01T00:00:00.000Z", 3.5, 1, (ParamWarning("tag", "ignored"),)
            )
        )
    )
    assert meta["type"] == "Metadata" and meta["request_id"] == "req" and meta["duration"] == 3.5
    assert meta["models"] == [MODEL.uuid] and meta["model_info"][MODEL.uuid]["name"] == "tiny.en"
    assert meta["warnings"] == [{"parameter": "tag", "type": "unsupported_parameter", "message": "ignored"}]
    assert json.loads(encode(SpeechStartedMessage(0.52))) == {
        "type": "SpeechStarted",
        "channel": [0],
        "timestamp": 0.52,
    }
    assert json.loads(encode(UtteranceEndMessage(2.4))) == {
        "type": "UtteranceEnd",
        "channel": [0, 1],
        "last_word_end": 2.4,
    }


def test_model_uuid_is_stable_per_model() -> None:
    assert MODEL.uuid == ModelInfo("tiny.en", "0.1.0", "local").uuid != ModelInfo("small.en", "0.1.0", "local").uuid


def test_dictation_is_supported_with_punctuation_and_refused_without() -> None:
    params = parse_params([("dictation", "true"), ("punctuate", "true")])
    assert params.options.dictation and not params.warnings  # no longer ignored
    assert parse_params([("dictation", "true"), ("smart_format", "true")]).options.dictation
    assert not parse_params([]).options.dictation
    # Deepgram would silently not apply it; a 400 says why instead.
    with pytest.raises(ListenRequestError, match="dictation=true requires punctuate=true") as caught:
        parse_params([("dictation", "true")])
    assert caught.value.status == 400


def test_dictation_without_an_endpointing_parameter_waits_longer() -> None:
    dictating = [("dictation", "true"), ("punctuate", "true")]
    assert parse_params(dictating).options.endpointing == 800
    assert parse_params([*dictating, ("endpointing", "300")]).options.endpointing == 300
    assert parse_params([("punctuate", "true")]).options.endpointing < 800
