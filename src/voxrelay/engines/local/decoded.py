"""What a decode is asked and what it gives back: the local engine's decoding data, without the model.

`DecodeRequest` is one `WhisperDecoder.decode` call as data (so the scheduler can batch interims);
`Decoded` is its result, `Span` one of Whisper's timed segments in it, `Context` the end of the
previous final decoded in front of the next one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from voxrelay.engines.base import Word

__all__ = [
    "LEADING_PUNCTUATION",
    "LOW_LOGPROB",
    "MAX_COMPRESSION_RATIO",
    "NO_SPEECH_PROB",
    "PUNCTUATION",
    "SHORT_WINDOW_MAX_S",
    "Context",
    "DecodeRequest",
    "Decoded",
    "Span",
    "joined_result",
    "make_word",
]

PUNCTUATION = re.compile(r"[^\w\s'-]")
LEADING_PUNCTUATION = ",.;:!?- "  # how a continued sentence may start; not part of the new text (nor a context)
# Whisper's own thresholds (openai/whisper transcribe.py): a segment that is probably
# not speech and decoded with low confidence is dropped; so is one that compresses too well.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MAX_COMPRESSION_RATIO = 2.4
SHORT_WINDOW_MAX_S = 27.0  # longer audio is decoded in Whisper's 30 s windows (see WhisperDecoder.decode)


@dataclass(frozen=True, slots=True)
class Span:
    """One of Whisper's own timed segments: where it starts (s) and its raw text."""

    start: float
    text: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """The text of one segment; times are seconds from the segment's first sample."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()
    spans: tuple[Span, ...] = ()  # Whisper's segments of `text` (short-window decodes only)


@dataclass(frozen=True, slots=True)
class Context:
    """The audio right before a segment (16 kHz float32) and what was said in it."""

    audio: np.ndarray
    text: str


@dataclass(frozen=True, slots=True)
class DecodeRequest:
    """One `WhisperDecoder.decode` call as data, so a scheduler can run several as one batch."""

    audio: np.ndarray
    language: str | None = None
    prompt: str | None = None
    hotwords: str | None = None
    beam_size: int = 1
    word_timestamps: bool = False
    punctuate: bool = True
    window_pad_s: float | None = None
    context: Context | None = None

    @property
    def group(self) -> Hashable | None:
        """What a batch-mate must share (None: decoded alone; see `WhisperDecoder.decode_batch`)."""
        if self.window_pad_s is None or self.context is not None or self.word_timestamps or self.beam_size != 1:
            return None
        if self.prompt or len(self.audio) >= SHORT_WINDOW_MAX_S * 16000:
            return None
        return (self.language, self.hotwords, self.punctuate)

    @property
    def size(self) -> float:
        """Seconds of audio: batch-mates of about the same length waste the least encoder work on padding."""
        return len(self.audio) / 16000


def make_word(spoken: str, start: float, end: float, probability: float, punctuate: bool) -> Word:
    """A `Word` from Whisper's text of it: bare (no punctuation, lower case) and as spoken if `punctuate`."""
    spoken = spoken.strip()
    bare = PUNCTUATION.sub("", spoken).lower()
    return Word(bare, float(start), float(end), float(probability), spoken if punctuate else bare)


def joined_result(
    texts: list[str], words: list[Word], logprobs: list[float], punctuate: bool, spans: tuple[Span, ...] = ()
) -> Decoded:
    """One `Decoded` from segment texts, their words and log-probabilities (confidence: the words', else the text's)."""
    text = " ".join(t for t in texts if t)
    if not punctuate:
        text = PUNCTUATION.sub("", text).lower()
    if words:
        confidence = float(np.mean([w.confidence for w in words]))
    elif logprobs:
        confidence = float(math.exp(np.mean(logprobs)))
    else:
        confidence = 0.0
    return Decoded(" ".join(text.split()), confidence, tuple(words), spans)
