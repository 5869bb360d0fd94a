"""What a short-window decode may return: its token budget, its timed segments, and the guards against repeats.

Pure functions over CTranslate2's generated token ids (and the tokenizer that names them);
`WhisperDecoder._decode_short` calls them in order: `token_budget` and `max_length` before
`generate`, then `timed_segments`, `drop_repeats` and, for a decode that ran to its cap,
`cut_loop`.
"""

from __future__ import annotations

import re
from typing import Any

from voxrelay.engines.local.repeats import looping_tail, trim_periodic

__all__ = ["cut_loop", "drop_repeats", "max_length", "repeat_key", "timed_segments", "token_budget"]

_PUNCTUATION = re.compile(r"[^\w\s'-]")
_MAX_TOKENS_PER_S = 8  # generated tokens (text and timestamps) per second of audio
_MAX_NEW_TOKENS = 224  # Whisper's limit: half its 448-token text context
_LATE_SEGMENT_S = 0.1  # a new segment starting this close to (or past) the end of the audio is a repeat
_MIN_REPEAT_WORDS = 3  # a repeated segment of this many words or more is a repeat
# A unit repeated this often (the last copy may be cut short) at the end of a decode that ran to its token
# cap is a loop; a repetition that ends before the cap ("no, no, no") is speech and stays.
_LOOP_COPIES = 3


def token_budget(duration: float, forced: int = 0) -> int:
    """Tokens a decode of `duration` s may return: `forced` prefix tokens plus `_MAX_TOKENS_PER_S` a second (+10)."""
    return int(min(_MAX_NEW_TOKENS, forced + 10 + duration * _MAX_TOKENS_PER_S))


def max_length(budget: int, previous: int = 0) -> int:
    """`max_length` for CTranslate2's Whisper that returns at most `budget` tokens after `previous` earlier-text ones.

    CTranslate2 returns at most `min(max_length // 2, max_length - previous)` tokens (prefix
    included; measured with tiny.en, CTranslate2 4.8): half the 448-token text context, as
    openai/whisper's `sample_len`, and the earlier-text block counts against it. Without the
    doubling a fast talker's last words were cut off (tokens, timestamps included, run at 4-5 a
    second in ordinary dictation); without `previous`, 30 keyterms cut the transcript short and
    40 crashed the process (segfault in generate). Before issue 16 the earlier text was doubled
    too, which lifted the cap by that much: a 46-keyterm glossary (196 tokens) let a 0.5 s
    interim loop for ~200 tokens instead of 14.
    """
    return max(2 * budget, budget + previous)


def cut_loop(segments: list[tuple[float, list[int]]], tokenizer: Any) -> list[tuple[float, list[int]]]:
    """`segments` without the loop at their end (`repeats.looping_tail`, case and spaces folded), if any."""
    tokens = [token for _, segment in segments for token in segment]
    cut = looping_tail([tokenizer.decode([t]).strip().lower() for t in tokens], _LOOP_COPIES)
    if cut is None:
        return segments
    kept: list[tuple[float, list[int]]] = []
    for start, segment in segments:
        if cut <= 0:
            break
        kept.append((start, segment[:cut]))
        cut -= len(segment)
    return kept


def timed_segments(ids: list[int], tokenizer: Any, start: float = 0.0) -> list[tuple[float, list[int]]]:
    """Split a timestamped token sequence into (start time, text tokens) segments.

    Tokens before the first timestamp belong to a segment that began at `start`.
    """
    segments: list[tuple[float, list[int]]] = []
    current: list[int] = []
    for token in ids:
        if token >= tokenizer.timestamp_begin:
            if current:
                segments.append((start, current))
                current = []
            start = (token - tokenizer.timestamp_begin) * 0.02
        elif token < tokenizer.eot:
            current.append(token)
    if current:
        segments.append((start, current))
    return segments


def repeat_key(text: str) -> str:
    """A segment's words as repeats are compared: no punctuation, lower case."""
    return _PUNCTUATION.sub("", text).lower().strip()


def drop_repeats(
    segments: list[tuple[float, list[int]]], tokenizer: Any, duration: float, seen: tuple[str, ...] = ()
) -> list[tuple[float, list[int]]]:
    """The segments up to the first that starts past the audio or repeats an earlier one (or one of `seen`)."""
    kept: list[tuple[float, list[int]]] = []
    keys = set(seen)
    for start, tokens in segments:
        tokens = trim_periodic(tokens, lambda u: len(repeat_key(tokenizer.decode(u)).split()), _MIN_REPEAT_WORDS)
        key = repeat_key(tokenizer.decode(tokens))
        if kept and start >= duration - _LATE_SEGMENT_S:
            break
        if len(key.split()) >= _MIN_REPEAT_WORDS and key in keys:
            break  # a repeated phrase, not a repeated digit ("four four nine eight")
        keys.add(key)
        kept.append((start, tokens))
    return kept
