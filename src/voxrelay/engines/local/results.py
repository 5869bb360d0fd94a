"""Shaping one decode into a stream's result: word times on the stream's clock, dictation, the next final's context."""

from __future__ import annotations

import numpy as np

from voxrelay.engines.base import Word
from voxrelay.engines.local.whisper import LEADING_PUNCTUATION, Context, Decoded, Span
from voxrelay.protocol.dictation import dictate_text, dictate_words

__all__ = ["agreed_final", "dictated", "shift", "tail_context", "word_context"]


def dictated(text: str, words: tuple[Word, ...], *, final: bool, before: str) -> tuple[str, tuple[Word, ...]]:
    """`text` and `words` with spoken punctuation commands applied (`protocol.dictation`).

    With word timings the pauses around a candidate count as evidence; without (interims), the text alone.
    """
    if words:
        return dictate_words(words, final=final, before=before)
    return dictate_text(text, final=final, before=before), ()


def shift(words: tuple[Word, ...], offset: float) -> tuple[Word, ...]:
    return tuple(
        Word(w.word, round(w.start + offset, 3), round(w.end + offset, 3), w.confidence, w.punctuated_word)
        for w in words
    )


def tail_context(audio: np.ndarray, decoded: Decoded, seconds: float) -> Context | None:
    """The end of a final as context for the next: its last Whisper segments that start within `seconds` of its end.

    Whisper's segment times are free (the decode is timestamped anyway); cutting inside a
    segment would need word timings. A final whose last segment is longer gives no context.
    """
    duration = len(audio) / 16000
    tail: list[Span] = []
    for span in reversed(decoded.spans):
        if duration - span.start > seconds:
            break
        tail.insert(0, span)
    text = "".join(span.text for span in tail).strip().lstrip(LEADING_PUNCTUATION)
    if not tail or not text:
        return None
    return Context(audio[int(tail[0].start * 16000) :].copy(), text)


def agreed_final(words: tuple[Word, ...]) -> Decoded:
    """Committed interim words (`local.agreement`) as a final's decode: their text, mean word probability."""
    text = " ".join(w.punctuated_word for w in words)
    return Decoded(text, float(np.mean([w.confidence for w in words])) if words else 0.0, words)


def word_context(audio: np.ndarray, words: tuple[Word, ...], seconds: float) -> Context | None:
    """`tail_context` for a segment committed from interim words: the words that start within `seconds` of its end.

    Word timings come from the alignment (less sure than a segment boundary), so the audio starts 50 ms early.
    """
    duration = len(audio) / 16000
    tail = [w for w in words if duration - w.start <= seconds]
    text = " ".join(w.punctuated_word for w in tail).strip().lstrip(LEADING_PUNCTUATION)
    if not tail or not any(c.isalnum() for c in text):
        return None
    return Context(audio[int(max(0.0, tail[0].start - 0.05) * 16000) :].copy(), text)
