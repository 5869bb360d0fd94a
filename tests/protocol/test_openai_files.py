"""The OpenAI file endpoint's sans-I/O part: form validation and every response format, checked with the SDK's own models."""

from __future__ import annotations

import json
import re

import pytest
from openai._models import validate_type
from openai.types.audio import Transcription, TranscriptionStreamEvent, TranscriptionVerbose

from voxrelay.engines.files import FileSegment
from voxrelay.protocol.events import Word
from voxrelay.protocol.openai_files import OpenAIError, SseText, TranscriptionParams, content_type, parse_form, render

SEGMENTS = [
    FileSegment(0, 0.0, 2.5, " And so my fellow Americans,", (Word("and", 0.1, 0.3, 0.9, "And"),
                Word("americans", 1.4, 2.3, 0.8, "Americans,")), (50364, 400, 50489), 0.0, -0.25, 1.3, 0.01),
    FileSegment(1, 2.5, 3661.25, " ask not.", (Word("ask", 2.6, 2.9, 0.9, "ask"), Word("not", 3.0, 3.3, 0.9, "not.")),
                (1, 2), 0.2, -0.4, 1.1, 0.02),
]


def form(**fields: str) -> list[tuple[str, str]]:
    return [("model", "whisper-1"), *fields.items()]


def test_the_sdk_form_parses() -> None:
    fields = [("model", "whisper-1"), ("chunking_strategy[type]", "server_vad"), ("include[]", "logprobs"),
              ("language", "EN"), ("prompt", "JFK."), ("response_format", "verbose_json"), ("temperature", "0.2"),
              ("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment"), ("stream", "false")]
    params = parse_form(fields, has_file=True)
    assert params == TranscriptionParams("whisper-1", "en", "JFK.", "verbose_json", True, True, 0.2, False)
    # Without the brackets (curl), and word only: no segments.
    params = parse_form(form(response_format="verbose_json", timestamp_granularities="word"), has_file=True)
    assert params.word_timestamps and not params.segment_timestamps
    assert parse_form(form(stream="true"), has_file=True).stream
    assert parse_form(form(), has_file=True) == TranscriptionParams("whisper-1")


@pytest.mark.parametrize(
    "fields, has_file, param, code",
    [
        (form(), False, "file", "missing_required_parameter"),
        ([("language", "en")], True, "model", "missing_required_parameter"),
        (form(response_format="diarized_json"), True, "response_format", "invalid_value"),
        (form(response_format="xml"), True, "response_format", "invalid_value"),
        (form(timestamp_granularities="word"), True, "timestamp_granularities[]", "invalid_value"),
        ([*form(response_format="verbose_json"), ("timestamp_granularities[]", "char")], True,
         "timestamp_granularities[]", "invalid_value"),
        (form(temperature="hot"), True, "temperature", "invalid_value"),
        (form(temperature="1.5"), True, "temperature", "invalid_value"),
        (form(stream="maybe"), True, "stream", "invalid_value"),
        (form(language="english"), True, "language", "invalid_value"),
        (form(prompt="x" * 5000), True, "prompt", "invalid_value"),
        (form(beam_size="5"), True, "beam_size", "unknown_parameter"),
        ([*form(), ("model", "other")], True, "model", "invalid_value"),
        ([*form(), ("file", "not a file")], True, "file", "invalid_value"),
    ],
)
def test_bad_fields_are_400_naming_the_field(fields: list[tuple[str, str]], has_file: bool, param: str, code: str) -> None:
    with pytest.raises(OpenAIError) as raised:
        parse_form(fields, has_file=has_file)
    error = raised.value
    assert error.status == 400 and error.param == param and error.code == code
    body = error.body()["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["type"] == "invalid_request_error" and body["message"]


def params(fmt: str, *granularities: str) -> TranscriptionParams:
    fields = form(response_format=fmt) + [("timestamp_granularities[]", g) for g in granularities]
    return parse_form(fields, has_file=True)


def test_json_and_text() -> None:
    body = json.loads(render(params("json"), SEGMENTS, language="en", duration=3661.25))
    Transcription.model_validate(body, strict=True)
    assert body == {"text": "And so my fellow Americans, ask not.", "usage": {"type": "duration", "seconds": 3661.25}}
    assert render(params("text"), SEGMENTS, language="en", duration=1.0) == "And so my fellow Americans, ask not.\n"
    assert content_type("json") == "application/json" and content_type("text").startswith("text/plain")


def test_verbose_json_has_every_field_the_sdk_requires() -> None:
    body = json.loads(render(params("verbose_json"), SEGMENTS, language="en", duration=3.5))
    verbose = TranscriptionVerbose.model_validate(body, strict=True)
    assert verbose.language == "english" and verbose.duration == 3.5 and verbose.text.startswith("And so")
    assert body["task"] == "transcribe" and "words" not in body
    assert [s.id for s in verbose.segments or []] == [0, 1] and verbose.segments[1].temperature == 0.2  # type: ignore[index]
    assert verbose.segments[0].tokens == [50364, 400, 50489]  # type: ignore[index]
    both = TranscriptionVerbose.model_validate(
        json.loads(render(params("verbose_json", "word", "segment"), SEGMENTS, language="xx", duration=3.5)), strict=True
    )
    assert both.language == "xx" and both.segments and both.words
    assert [w.word for w in both.words] == ["And", "Americans,", "ask", "not."]
    words_only = json.loads(render(params("verbose_json", "word"), SEGMENTS, language="en", duration=3.5))
    assert "segments" not in words_only and len(words_only["words"]) == 4


def test_srt_and_vtt_cues() -> None:
    srt = render(params("srt"), SEGMENTS, language="en", duration=3.5)
    assert srt == ("1\n00:00:00,000 --> 00:00:02,500\nAnd so my fellow Americans,\n\n"
                   "2\n00:00:02,500 --> 01:01:01,250\nask not.\n\n")
    vtt = render(params("vtt"), SEGMENTS, language="en", duration=3.5)
    assert vtt.startswith("WEBVTT\n\n") and "00:00:02.500 --> 01:01:01.250\nask not.\n" in vtt
    assert re.findall(r"\d\d:\d\d:\d\d\.\d\d\d --> ", vtt) == ["00:00:00.000 --> ", "00:00:02.500 --> "]
    assert content_type("vtt").startswith("text/vtt")


def test_sse_deltas_add_up_to_the_done_text() -> None:
    sse = SseText()
    blank = FileSegment(2, 3.0, 3.2, "  ")
    frames = [f for f in (sse.delta(SEGMENTS[0]), sse.delta(blank), sse.delta(SEGMENTS[1])) if f is not None]
    frames.append(sse.done())
    events = []
    for frame in frames:
        assert frame.startswith("data: ") and frame.endswith("\n\n")
        events.append(validate_type(type_=TranscriptionStreamEvent, value=json.loads(frame[6:])))
    assert [e.type for e in events] == ["transcript.text.delta", "transcript.text.delta", "transcript.text.done"]
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == render(params("text"), SEGMENTS, language="en", duration=1).strip()  # type: ignore[union-attr]
    error = json.loads(SseText.error(OpenAIError(500, "the engine failed", type="server_error"))[6:])
    assert error == {"error": {"message": "the engine failed", "type": "server_error", "param": None, "code": None}}
