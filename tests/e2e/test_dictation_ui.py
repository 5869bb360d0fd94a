"""The web UI's "Spoken punctuation" switch in real Chromium: dictated commands become marks and line breaks.

The fake microphone plays a synthesized dictation clip ("That is all for today new paragraph best regards
comma see you soon", tests/fixtures/dictation) into the page served by `voxrelay serve`; the switch is
turned on like a person would, and the textarea must hold the marks and the paragraph break, with no
command word and no stray space around them.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import Gateway, padded_wav
from .test_browser import MAX_WER, PAD_AFTER_S, PAD_BEFORE_S, TYPED, open_ui, speak_clip, wer

pytestmark = pytest.mark.e2e

expect: Any
try:
    from playwright.sync_api import expect
except ModuleNotFoundError:  # pragma: no cover - the conftest skips these tests then
    expect = None

DICTATION = Path(__file__).parents[1] / "fixtures" / "dictation"
CLIP = "c07_slt.wav"


def expected_text(name: str) -> str:
    with open(DICTATION / "refs.tsv", newline="") as f:
        row = next(r for r in csv.DictReader(f, delimiter="\t") if r["file"] == name)
    return row["expected"].replace("\\n", "\n")


def test_spoken_punctuation_switch_turns_commands_into_marks_and_a_paragraph(
    launch_chromium: Any, gateway: Gateway, tmp_path: Path
) -> None:
    audio = tmp_path / CLIP
    duration = padded_wav(DICTATION / CLIP, audio, PAD_BEFORE_S, PAD_AFTER_S)
    page, console, sockets = open_ui(launch_chromium(audio), gateway.url + "/")
    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)

    switch = page.get_by_role("switch", name="Spoken punctuation")
    expect(switch).not_to_be_checked()
    switch.check()
    page.reload()  # the choice is kept
    switch = page.get_by_role("switch", name="Spoken punctuation")
    expect(switch).to_be_checked(timeout=15_000)
    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)

    value = speak_clip(page, duration)

    configure = sockets.text[0]
    assert configure["action"] == "configure" and configure["dictation"] is True, configure
    assert "endpointing" not in configure  # the gateway's dictation default (800 ms) applies
    finals = [m["transcript"] for m in sockets.received if m["type"] == "final_transcript"]
    assert {"type": "stopped"} in sockets.received, sockets.received
    expected = expected_text(CLIP)  # "That is all for today\n\nBest regards, see you soon"
    assert value.startswith(TYPED), value
    dictated = value[len(TYPED) :]
    assert "\n\n" in dictated and "," in dictated, (dictated, finals)
    assert not re.search(r"\b(comma|paragraph)\b", dictated, re.I), (dictated, finals)
    for stray in (" ,", " \n", "\n "):
        assert stray not in dictated, (stray, dictated)
    assert dictated.split("\n\n", 1)[1][:1].isupper(), dictated  # a paragraph starts with a capital
    assert wer(expected, dictated) <= MAX_WER, (dictated, finals)
    assert not [line for line in console if line.startswith(("error", "pageerror"))], console


def test_with_the_switch_off_nothing_asks_for_dictation(launch_chromium: Any, gateway: Gateway, tmp_path: Path) -> None:
    audio = tmp_path / CLIP
    duration = padded_wav(DICTATION / CLIP, audio, PAD_BEFORE_S, PAD_AFTER_S)
    page, _console, sockets = open_ui(launch_chromium(audio), gateway.url + "/")
    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)
    expect(page.get_by_role("switch", name="Spoken punctuation")).not_to_be_checked()
    value = speak_clip(page, duration)
    assert "dictation" not in sockets.text[0] and sockets.text[0]["endpointing"] == 300, sockets.text[0]
    assert re.search(r"\bcomma\b", value, re.I) or "paragraph" in value.lower(), value  # the words stay words
