"""token_guards: the token cap a short-window decode gets (pure; the repeat guards need a tokenizer: test_whisper)."""

from __future__ import annotations

from voxrelay.engines.local.token_guards import max_length, token_budget


def test_the_token_cap_holds_under_a_long_glossary() -> None:
    """The earlier-text block counts in CTranslate2's max_length once, not twice (issue 16).

    Before, a 196-token glossary lifted the cap of a 0.5 s interim from 14 tokens to ~210.
    """
    assert max_length(token_budget(0.5)) == 28  # no earlier text: CTranslate2 returns max_length // 2
    assert max_length(token_budget(0.5), previous=196) == 14 + 196
    assert max_length(token_budget(60.0, forced=20), previous=223) == 448  # at most 224 tokens, as before
