"""json_text: compact JSON of json's values (but NaN and infinities), and json.loads's values and errors (but one)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voxrelay.protocol import json_text

MESSAGES: list[Any] = [
    {"type": "interim_transcript", "transcript": "héllo \"wörld\"\n\u2028"},
    {"type": "final_transcript", "transcript": "", "start": 1.234, "end": 1e-7, "speech_final": True},
    {"type": "Results", "channel": {"alternatives": [{"words": [], "confidence": 0.0}]}, "x": None, "n": -3},
    {"big": 2**64 - 1, "small": -(2**63), "inf": float("inf"), "nan": float("nan")},
    ["a", 1, 2.5, False],
    "just a string",
    {},
]


FINITE = [m for m in MESSAGES if m is not MESSAGES[3]] + [{"big": 2**64 - 1, "small": -(2**63), "x": [1e-7, 1e16, -0.0]}]


@pytest.mark.parametrize("value", FINITE)
def test_dumps_has_json_dumps_values(value: Any) -> None:
    assert json.loads(json_text.dumps(value)) == json.loads(json.dumps(value, ensure_ascii=False))


def test_dumps_is_compact_utf8_text_as_deepgram_sends() -> None:
    text = json_text.dumps({"type": "Results", "channel_index": [0, 1], "transcript": "héllo\u2028", "start": 2.5})
    assert text == '{"type":"Results","channel_index":[0,1],"transcript":"héllo\u2028","start":2.5}'


def test_dumps_writes_null_for_what_is_not_a_json_number() -> None:
    # The one value difference from json.dumps, which writes NaN / Infinity (JSON.parse refuses them).
    assert json.loads(json_text.dumps({"inf": float("inf"), "nan": float("nan"), "ok": 1.5})) == {
        "inf": None, "nan": None, "ok": 1.5}


@pytest.mark.parametrize("value", [{"big": 2**64}, {1: "a", "b": [2]}, {"lone": "\ud800"}])
def test_dumps_gives_json_text_for_what_only_json_encodes(value: Any) -> None:
    assert json_text.dumps(value) == json.dumps(value, ensure_ascii=False)


def test_dumps_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError):
        json_text.dumps({"a": object()})


@pytest.mark.parametrize(
    "text",
    [json.dumps(m, ensure_ascii=False) for m in MESSAGES]
    + [' {"a": 1}', '{"a": 1}\n', "\t[1]\r\n", "NaN", "-Infinity"]
    # Where orjson and json could disagree: duplicate keys, escaped and lone surrogates, float edges.
    + ['{"a": 1, "a": 2}', '"\\ud83d\\ude00"', '"\\ud800"', '"\ud800"', "[1e400, -0.0, 5e-324, 0.1, 1E+2, 1.5e-7]"],
)
def test_loads_is_json_loads(text: str) -> None:
    expected, got = json.loads(text), json_text.loads(text)
    assert json.dumps(got) == json.dumps(expected)  # NaN != NaN: compare the text


def test_loads_gives_integers_beyond_64_bits_as_floats() -> None:
    # The one documented difference from json.loads (orjson's); no upstream frame carries such a number.
    assert json_text.loads(f"[{2**64}, {-(2**63) - 1}]") == [float(2**64), float(-(2**63) - 1)]
    assert json.dumps(json_text.loads(f"{2**64 - 1}")) == json.dumps(2**64 - 1)


@pytest.mark.parametrize("text", ["", "  ", "{", '{"a": 1} x', "[1, 2]]", "{'a': 1}", "nul"])
def test_loads_fails_as_json_loads(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as got:
        json_text.loads(text)
    assert str(got.value) == str(expected.value)
