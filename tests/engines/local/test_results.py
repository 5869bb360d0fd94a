"""Shaping a decode into a stream's result (engines.local.results): dictation with and without word timings."""

from __future__ import annotations

from voxrelay.engines.base import Word
from voxrelay.engines.local.results import dictated, shift


def test_dictated_judges_timed_words_by_their_pauses() -> None:
    words = (
        Word("dear", 0.0, 0.3, 0.9, "Dear"),
        Word("maria", 0.3, 0.7, 0.9, "Maria"),
        Word("comma", 1.0, 1.3, 0.9, "comma"),
        Word("thanks", 1.6, 2.0, 0.9, "thanks"),
    )
    text, kept = dictated("Dear Maria comma thanks", words, final=True, before="")
    assert text == "Dear Maria, thanks"
    assert [w.punctuated_word for w in kept] == ["Dear", "Maria,", "thanks"]


def test_dictated_without_words_judges_the_text_alone() -> None:
    # No timings: nothing shows the pauses, and Whisper's marks are all there is.
    assert dictated("Dear Maria comma thanks", (), final=True, before="") == ("Dear Maria comma thanks", ())
    assert dictated("Dear Maria, comma, thanks", (), final=True, before="") == ("Dear Maria, thanks", ())


def test_shift_moves_words_to_the_streams_clock() -> None:
    assert shift((Word("a", 0.1, 0.2, 1.0, "A"),), 2.0) == (Word("a", 2.1, 2.2, 1.0, "A"),)
