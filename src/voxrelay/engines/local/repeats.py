"""Whisper's loop within one segment: "Please call Stella. Please call Stella. Please call..."

On a short window Whisper sometimes repeats an utterance without a timestamp between the
copies, so the segment-level guard in `whisper._drop_repeats` cannot see it; it happens
more often with a keyterm prompt in front (measured on the corpus clip vctk_p226_001 with
keyterm "Stella"). The cap on generated tokens bounds the damage; this trims it.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["trim_periodic"]


def trim_periodic(tokens: list[int], words_of: Callable[[list[int]], int], min_words: int) -> list[int]:
    """`tokens` cut to their first unit when all the rest repeats that unit (a last copy may be cut short).

    A unit of fewer than `min_words` words (`words_of` counts them) is kept repeated: "four
    four nine eight" and "no, no, no" are speech, not a loop.
    """
    for period in range(1, len(tokens) // 2 + 1):
        unit = tokens[:period]
        rest = tokens[period:]
        if all(token == unit[i % period] for i, token in enumerate(rest)):
            return unit if words_of(unit) >= min_words else tokens
    return tokens
