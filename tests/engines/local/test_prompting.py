"""What the short-window decode puts in front of the transcript: keyterms, prompt, language; the in-segment loop trim."""

from __future__ import annotations

import os

import pytest
from faster_whisper.tokenizer import Tokenizer
from tokenizers import Tokenizer as HfTokenizer

from voxrelay.engines.local.model_files import resolve_model
from voxrelay.engines.local.prompting import (
    MAX_PREVIOUS_TOKENS,
    keyterm_text,
    language_error,
    previous_text,
    transcript_tokenizer,
)
from voxrelay.engines.local.repeats import trim_periodic


@pytest.fixture(scope="module")
def hf() -> HfTokenizer:
    # tiny.en's tokenizer: no model load. Its vocabulary has Whisper's language tokens too,
    # which lets the multilingual start sequence be checked without a multilingual model.
    return HfTokenizer.from_file(os.path.join(resolve_model("tiny.en"), "tokenizer.json"))


@pytest.fixture(scope="module")
def english(hf: HfTokenizer) -> Tokenizer:
    return transcript_tokenizer(hf, False, None)


def test_keyterms_become_a_labelled_sentence() -> None:
    assert keyterm_text(("AntiBERTa", " ABlooper ")) == "Glossary: AntiBERTa, ABlooper."
    assert keyterm_text(()) is None
    assert keyterm_text(("  ",)) is None


def test_previous_text_is_startofprev_then_keyterms_then_prompt(english: Tokenizer) -> None:
    tokens = previous_text(english, hotwords="Glossary: Kenji Watanabe.", prompt="the meeting moved")
    assert tokens[0] == english.sot_prev
    assert english.decode(tokens[1:]) == " Glossary: Kenji Watanabe. the meeting moved"
    assert previous_text(english, hotwords=None, prompt=None) == []
    assert previous_text(english, hotwords=" ", prompt="") == []


def test_a_long_prompt_keeps_its_end_and_the_keyterms_whole(english: Tokenizer) -> None:
    prompt = " ".join(f"word{i}" for i in range(400))
    tokens = previous_text(english, hotwords="Glossary: Stella.", prompt=prompt)
    assert len(tokens) == 1 + MAX_PREVIOUS_TOKENS
    text = english.decode(tokens[1:])
    assert text.startswith(" Glossary: Stella.") and text.endswith("word399")


def test_transcript_start_carries_the_language_only_for_multilingual_models(hf: HfTokenizer) -> None:
    english = transcript_tokenizer(hf, False, None)
    assert english.sot_sequence == [english.sot]
    french = transcript_tokenizer(hf, True, "fr")
    assert french.sot_sequence == [french.sot, hf.token_to_id("<|fr|>"), hf.token_to_id("<|transcribe|>")]
    default = transcript_tokenizer(hf, True, None)
    assert default.sot_sequence[1] == hf.token_to_id("<|en|>")
    with pytest.raises(ValueError):
        transcript_tokenizer(hf, True, "xx")


def test_english_only_models_refuse_other_languages() -> None:
    message = language_error("tiny.en", False, "fr")
    assert message is not None and "English-only" in message and "'fr'" in message
    assert language_error("tiny.en", False, "en") is None
    assert language_error("tiny.en", False, None) is None
    assert language_error("small", True, "fr") is None


def test_a_looping_segment_is_cut_to_its_first_copy(english: Tokenizer) -> None:
    def words(unit: list[int]) -> int:
        return len(english.decode(unit).split())

    once = english.encode(" Please call Stella.")
    looped = once * 3 + once[:2]
    assert trim_periodic(looped, words, 3) == once
    digits = english.encode(" four four four four")
    assert trim_periodic(digits, words, 3) == digits  # a unit of one word is speech, not a loop
    plain = english.encode(" Please call Stella. Then call Maria.")
    assert trim_periodic(plain, words, 3) == plain
