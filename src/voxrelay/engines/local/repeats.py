"""Whisper's loops: "Please call Stella. Please call Stella. Please call..." and "Please, please, please, ...".

On a short window Whisper sometimes repeats an utterance without a timestamp between the
copies, so the segment-level guard in `token_guards.drop_repeats` cannot see it; it happens
more often with a keyterm prompt in front (measured on the corpus clip vctk_p226_001 with
keyterm "Stella"). The cap on generated tokens bounds the damage; `trim_periodic` trims a
segment that is nothing but copies of one phrase, and `looping_tail` finds a loop that
starts after some real words, of units as short as one word ("$5, $5, $5, ...", "0 0 0 ...").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

__all__ = ["looping_tail", "trim_periodic"]


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


def looping_tail(keys: Sequence[Hashable], min_copies: int) -> int | None:
    """Where to cut `keys` so that a loop at their end keeps only its first copy (None: no loop).

    `keys` are the tokens as compared (the caller folds case, so "Please, please," is one unit
    repeated). A loop is a unit repeated `min_copies` times or more up to the end, the last
    copy possibly cut short (a decode stopped by its token cap) but begun; of several, the one
    covering the most tokens is cut, and among equals the shortest unit.
    """
    n = len(keys)
    best: tuple[int, int] | None = None  # (tokens covered by the loop, cut)
    for period in range(1, n // max(1, min_copies - 1) + 1):
        start = n - period  # the loop's first index: extend backwards while the unit repeats
        while start > 0 and keys[start - 1] == keys[start - 1 + period]:
            start -= 1
        covered = n - start
        if covered > (min_copies - 1) * period and (best is None or covered > best[0]):
            best = (covered, start + period)
    return None if best is None else best[1]
