"""Whisper's loops (`repeats`): cases from the interims that ran away under a 46-keyterm glossary (issue 16)."""

from __future__ import annotations

from voxrelay.engines.local.repeats import looping_tail


def keys(text: str) -> list[str]:
    """Tokens as `token_guards.cut_loop` compares them, roughly: words and punctuation, case folded."""
    return text.lower().replace(",", " ,").replace("...", " ...").split()


def cut(text: str, copies: int = 3) -> str:
    words = keys(text)
    at = looping_tail(words, copies)
    return " ".join(words if at is None else words[:at])


def test_a_loop_after_real_words_keeps_the_words_and_one_copy() -> None:
    assert (
        cut("The total comes to $342, $5, and $5, $5, $5, $5, $5, $5, $5") == "the total comes to $342 , $5 , and $5 ,"
    )
    assert cut("And so, my fella, and so, my fella, and so, my fella,") == "and so , my fella ,"
    assert cut("Mostly because... mostly because... mostly because... mostly") == "mostly because ..."


def test_a_one_word_unit_is_a_loop_too() -> None:
    assert cut("0 0 0 0 0 0 0 0 0 0 0 0") == "0"
    assert cut("Please, please, please, please, please, please,") == "please ,"
    assert cut("dear, dear, dear, dear, dear, dear, dear, dear, dear") == "dear ,"


def test_a_last_copy_cut_short_counts_once_begun() -> None:
    # Two whole copies and the start of a third: a decode stopped by its token cap in the middle of a copy.
    assert cut("He began a confusion, he began a confusion, he began") == "he began a confusion ,"
    assert looping_tail(keys("He began a confusion, he began a confusion,"), 3) is None


def test_repetitions_people_say_are_kept() -> None:
    assert looping_tail(keys("four four nine eight"), 3) is None
    assert looping_tail(keys("no, no, no"), 4) is None  # three copies: only a loop at four or more
    assert looping_tail(keys("Please call Stella. Then call Maria."), 3) is None
    assert looping_tail([], 3) is None


def test_the_loop_covering_most_is_cut() -> None:
    # "e-" repeats too, but the phrase around it covers more.
    assert cut("I came, semicolon, e- semicolon, e- semicolon, e- semicolon") == "i came , semicolon , e-"
