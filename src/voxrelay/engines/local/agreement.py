"""Which words of a long utterance are stable enough to commit while the person is still speaking (pure).

LocalAgreement-2 (whisper_streaming): a word prefix that two consecutive interim decodes of the same
segment agree on is unlikely to change in a later decode. Word timings of the newer decode (Whisper's
cross-attention alignment) say where that prefix ends in the audio; its end must lie well before the
newest audio (Whisper's last words are the ones it still revises, and their timings the least sure),
and the word after it must be agreed too, so the cut between them falls in a gap both decodes saw.
The stream then cuts its segment there (a length-style cut: `speech_final` false) and the pending
tail, which a stop has to wait for, stays short.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from voxrelay.engines.base import Word

__all__ = ["AgreementConfig", "Commit", "PrefixAgreement", "plausible", "spoken"]


@dataclass(frozen=True, slots=True)
class AgreementConfig:
    # Only segments holding at least this much audio commit: shorter ones are cheap to decode at a stop
    # anyway, and every commit adds a boundary a word can be lost at.
    min_pending_s: float = 3.0
    # The committed words end at least this long before the newest audio of the decode.
    margin_s: float = 1.0
    # A commit holds at least this much of the segment (from its first sample to its last word's end).
    min_commit_s: float = 1.0
    # More committed words a second than this is a loop, not speech (fast speech is ~4-5 words a second).
    max_words_per_s: float = 7.0


@dataclass(frozen=True, slots=True)
class Commit:
    """Agreed words to commit and where to cut after them (seconds on the segment's clock)."""

    words: tuple[Word, ...]
    cut_after: float  # the last committed word's end
    cut_before: float  # the next agreed word's start (at least `cut_after`)


def _same(a: Word, b: Word) -> bool:
    return a.word == b.word and bool(a.word)


class PrefixAgreement:
    """The last interim's words of the current segment, compared with the next.

    Call order: `offer(words, duration)` with each interim decode of the segment (word timings on
    the segment's clock, `duration` the seconds of audio decoded); it returns a `Commit` when one is
    due. `reset()` at every cut of the segment (the next decode starts on a new clock).
    """

    def __init__(self, config: AgreementConfig | None = None) -> None:
        self.config = config or AgreementConfig()
        self._previous: tuple[Word, ...] = ()

    def reset(self) -> None:
        self._previous = ()

    def offer(self, words: tuple[Word, ...], duration: float) -> Commit | None:
        """Compare `words` with the previous decode's; the agreed words to commit now, if any."""
        words = spoken(words)
        previous, self._previous = self._previous, words
        cfg = self.config
        if duration < cfg.min_pending_s:
            return None
        agreed = 0
        while agreed < min(len(words), len(previous)) and _same(words[agreed], previous[agreed]):
            agreed += 1
        # The last committed word is `last`; `last + 1` must be agreed as well (the cut falls between them).
        for last in range(agreed - 2, -1, -1):
            word, following = words[last], words[last + 1]
            if word.end > duration - cfg.margin_s or following.start < word.end - 1e-6:
                continue  # too close to the newest audio, or timings out of order: try an earlier word
            if word.end < cfg.min_commit_s or not plausible(words[: last + 1], cfg.max_words_per_s):
                return None
            return Commit(words[: last + 1], word.end, following.start)
        return None


def spoken(words: tuple[Word, ...]) -> tuple[Word, ...]:
    """`words` without the alignment's punctuation-only words ("," between two words, which would end an
    agreement on the text): their punctuation goes to the word before them (the text keeps it)."""
    merged: list[Word] = []
    for word in words:
        if word.word:
            merged.append(word)
        elif merged and word.punctuated_word:
            merged[-1] = replace(merged[-1], punctuated_word=merged[-1].punctuated_word + word.punctuated_word)
    return tuple(merged)


def plausible(words: tuple[Word, ...], max_words_per_s: float) -> bool:
    """False for what Whisper's loops look like when two greedy decodes loop alike: a word three times in
    a row ("-y -y -y"), or more words than anyone says in their time span."""
    bare = [w.word for w in words]
    if any(bare[i] == bare[i + 1] == bare[i + 2] for i in range(len(bare) - 2)):
        return False
    span = words[-1].end - words[0].start
    return len(words) <= max_words_per_s * span + 1
