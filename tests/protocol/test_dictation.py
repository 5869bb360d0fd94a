"""Spoken punctuation commands (protocol.dictation): every command, spacing, capitals, no doubling, vetoes, evidence.

Inputs are written as Whisper writes them (its own punctuation included); `timed` builds a
words list with the pauses given, as the local engine's aligner returns it.
"""

from __future__ import annotations

import pytest

from voxrelay.protocol.dictation import COMMANDS, dictate_text, dictate_words
from voxrelay.protocol.events import Word


def timed(spec: str, pause_before: dict[int, float] | None = None) -> tuple[Word, ...]:
    """Words of `spec` (split on spaces), 0.3 s each, back to back except `pause_before[index]` seconds."""
    words, t = [], 0.0
    for index, text in enumerate(spec.split()):
        t += (pause_before or {}).get(index, 0.0)
        bare = "".join(c for c in text.lower() if c.isalnum() or c in "'-")
        words.append(Word(bare, round(t, 3), round(t + 0.3, 3), 0.9, text))
        t += 0.3
    return tuple(words)


# Every command, as Whisper writes a dictated one: set off by its own marks.
@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("Dear Maria, comma, thank you.", "Dear Maria, thank you."),
        ("It is done. Period.", "It is done."),
        ("It is done, full stop.", "It is done."),
        ("Are you coming, question mark, let me know.", "Are you coming? Let me know."),
        ("We won, exclamation point, the game is over.", "We won! The game is over."),
        ("We won, exclamation mark.", "We won!"),
        ("Two parts, colon, planning and review.", "Two parts: planning and review."),
        ("I came home, semicolon, it was closed.", "I came home; it was closed."),
        ("I came home, semi-colon, it was closed.", "I came home; it was closed."),
        ("Buy milk, new line, buy bread.", "Buy milk\nBuy bread."),
        ("That is all, new paragraph, best regards.", "That is all\n\nBest regards."),
        ('She said, open quote, we are ready, close quote.', 'She said "we are ready"'),
        ('He wrote, open quote, see you, end quote.', 'He wrote "see you"'),
        ('He wrote, open quote, see you, unquote.', 'He wrote "see you"'),
    ],
)
def test_each_command_becomes_its_mark(spoken: str, written: str) -> None:
    assert dictate_text(spoken, final=True) == written


def test_every_command_in_the_table_is_tested() -> None:
    marks = set(COMMANDS.values())
    assert marks == {",", ".", "?", "!", ":", ";", "\n", "\n\n", '"', "\u0000open"}


def test_marks_attach_without_a_space_and_quotes_hug_their_words() -> None:
    assert dictate_text('She said, open quote, we are ready. Close quote. Period.', final=True) == (
        'She said "we are ready".'
    )


def test_nothing_follows_a_line_break_and_the_next_line_is_capitalized() -> None:
    assert dictate_text("by eggs, new line, by apples, new line, by bread, period.", final=True) == (
        "by eggs\nBy apples\nBy bread."
    )


def test_the_word_after_a_sentence_end_is_capitalized() -> None:
    assert dictate_text("it is late, period, we should go.", final=True) == "it is late. We should go."


def test_a_capital_whisper_gave_after_its_own_period_is_undone_after_a_comma() -> None:
    assert dictate_text("Dear Maria. Comma. Thank you.", final=True) == "Dear Maria, thank you."


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("Maria, comma.", "Maria,"),
        ("the dashboard, period.", "the dashboard."),
        ("Is it ready? Question mark.", "Is it ready?"),
        ("It is ready. Question mark.", "It is ready?"),  # the command's mark replaces Whisper's
    ],
)
def test_whisper_marks_next_to_a_command_are_not_doubled(spoken: str, written: str) -> None:
    assert dictate_text(spoken, final=True) == written


def test_maria_comma_with_whisper_mark_after_only_needs_the_pause_before() -> None:
    assert dictate_words(timed("Maria comma,", pause_before={1: 0.3}), final=True)[0] == "Maria,"
    # Text alone shows no break before it: "It was a long period." must stay, so this does too.
    assert dictate_text("Maria comma,", final=True) == "Maria comma,"


def test_maria_comma_without_whisper_marks_is_a_command_by_its_pauses() -> None:
    words = timed("Dear Maria comma thank you", pause_before={2: 0.3, 3: 0.25})
    transcript, out = dictate_words(words, final=True)
    assert transcript == "Dear Maria, thank you"
    assert [w.punctuated_word for w in out] == ["Dear", "Maria,", "thank", "you"]


# The words stay words: each veto, and the lack of evidence.
@pytest.mark.parametrize(
    "sentence",
    [
        "We need a comma-separated list.",
        "We need a comma separated list.",
        "The period of time was short.",
        "They launched a new line of products.",
        "Put a comma here.",
        "The colon cancer screening is next week.",
        "This is my favorite quote of the day.",
        "Every period ends with an exam.",
        "The question mark at the end looks wrong.",
        "It was a trial period.",
        "In this case, colon cancer was ruled out.",  # a mark before it only: not set off after
        "Add new line items to the order.",  # no mark and no pause on either side
        "It was a long period.",  # set off after (the end), not before
    ],
)
def test_ordinary_words_stay(sentence: str) -> None:
    assert dictate_text(sentence, final=True) == sentence
    words = timed(sentence)
    assert dictate_words(words, final=True)[0] == sentence


def test_a_determiner_vetoes_even_with_pauses() -> None:
    words = timed("Put a comma here", pause_before={2: 0.4, 3: 0.4})
    assert dictate_words(words, final=True)[0] == "Put a comma here"


def test_a_following_of_vetoes_even_with_a_pause_before() -> None:
    words = timed("it lasted, period of time", pause_before={2: 0.4})
    assert dictate_words(words, final=True)[0] == "it lasted, period of time"


def test_a_pause_on_one_side_only_is_not_enough() -> None:
    words = timed("we saw colon cancer", pause_before={2: 0.4})
    assert dictate_words(words, final=True)[0] == "we saw colon cancer"


# Interim and final.


def test_an_interims_last_word_may_go_on_so_it_stays_until_the_final() -> None:
    assert dictate_text("We need a list, comma", final=False) == "We need a list, comma"
    assert dictate_text("We need a list, comma", final=True) == "We need a list,"


def test_an_interim_converts_a_command_set_off_on_both_sides() -> None:
    assert dictate_text("Dear Maria, comma, thank", final=False) == "Dear Maria, thank"


# A command that begins a result (the segmenter cut at the pause before it).


def test_a_leading_command_after_a_word_starts_the_transcript() -> None:
    assert dictate_text("Comma, thank you.", final=True, before="Dear Maria") == ", thank you."


def test_a_leading_command_after_a_sent_mark_is_dropped_not_doubled() -> None:
    assert dictate_text("Period.", final=True, before="Dear Maria.") == ""
    assert dictate_text("Period. We go.", final=True, before="Dear Maria.") == "We go."


def test_a_leading_line_break_is_kept_and_capitalizes() -> None:
    assert dictate_text("New paragraph. today we review.", final=True, before="Good morning.") == (
        "\n\nToday we review."
    )


def test_a_command_alone_at_the_start_of_the_stream_is_dropped() -> None:
    assert dictate_text("Comma.", final=True) == ""


# Words lists in Deepgram's shape.


def test_command_words_leave_the_words_list_and_marks_go_on_the_previous_word() -> None:
    words = timed("Dear Maria , comma , thank you . period .")
    transcript, out = dictate_words(words, final=True)
    assert transcript == "Dear Maria, thank you."
    assert [(w.word, w.punctuated_word) for w in out] == [
        ("dear", "Dear"), ("maria", "Maria,"), ("thank", "thank"), ("you", "you."),
    ]
    assert all(any(c.isalnum() for c in w.punctuated_word) for w in out)  # no word is punctuation alone
    assert (out[1].start, out[1].end) == (words[1].start, words[1].end)  # "Maria," ends where "Maria" did


def test_an_opening_quote_goes_in_front_of_the_next_word() -> None:
    words = timed("She said , open quote , we are ready , close quote .")
    transcript, out = dictate_words(words, final=True)
    assert transcript == 'She said "we are ready"'
    assert [w.punctuated_word for w in out] == ["She", "said", '"we', "are", 'ready"']


def test_a_line_break_ends_the_previous_words_punctuated_word() -> None:
    transcript, out = dictate_words(timed("Buy milk , new line , buy bread ."), final=True)
    assert transcript == "Buy milk\nBuy bread."
    assert [w.punctuated_word for w in out] == ["Buy", "milk\n", "Buy", "bread."]
    assert [w.word for w in out] == ["buy", "milk", "buy", "bread"]


def test_word_timings_are_kept_for_the_words_that_stay() -> None:
    words = timed("Dear Maria comma thank you", pause_before={2: 0.3, 3: 0.25})
    _, out = dictate_words(words, final=True)
    assert [(w.start, w.end) for w in out] == [(w.start, w.end) for w in words if w.word != "comma"]


def test_a_final_never_shows_a_command_it_converted() -> None:
    text = "Dear Maria, comma, thank you, period, new paragraph, best regards."
    written = dictate_text(text, final=True)
    assert written == "Dear Maria, thank you.\n\nBest regards."
    assert not {"comma", "period", "paragraph"} & set(written.lower().replace(".", " ").split())
