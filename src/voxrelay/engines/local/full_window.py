"""A long recording decoded by faster-whisper's own `transcribe` (30 s windows), with the local engine's guards.

`WhisperDecoder.decode` takes this path for audio too long for one short window, or when no
window padding is asked for. Segments Whisper marks as "no speech" with low confidence, and
runaway repetitions (too compressible), are dropped.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from voxrelay.engines.base import Word
from voxrelay.engines.local.decoded import (
    LOW_LOGPROB,
    MAX_COMPRESSION_RATIO,
    NO_SPEECH_PROB,
    Decoded,
    joined_result,
    make_word,
)

__all__ = ["decode_full"]

log = logging.getLogger(__name__)


def decode_full(
    model: Any,
    audio: np.ndarray,
    *,
    language: str | None,
    prompt: str | None,
    hotwords: str | None,
    beam_size: int,
    word_timestamps: bool,
    punctuate: bool,
) -> Decoded:
    """Transcribe `audio` (16 kHz float32) with `model` (a faster-whisper `WhisperModel`), blocking."""
    segments, _info = model.transcribe(
        audio,
        language=language if model.model.is_multilingual else "en",
        beam_size=beam_size,
        initial_prompt=prompt or None,
        hotwords=hotwords or None,
        condition_on_previous_text=False,
        vad_filter=False,
        word_timestamps=word_timestamps,
        without_timestamps=not word_timestamps,
    )
    texts: list[str] = []
    words: list[Word] = []
    logprobs: list[float] = []
    for segment in segments:  # the generator runs the model: keep this in the worker thread
        if segment.no_speech_prob > NO_SPEECH_PROB and segment.avg_logprob < LOW_LOGPROB:
            continue
        if segment.compression_ratio > MAX_COMPRESSION_RATIO:
            log.debug("dropped a repetitive segment (compression ratio %.2f)", segment.compression_ratio)
            continue
        texts.append(segment.text.strip())
        logprobs.append(segment.avg_logprob)
        for word in segment.words or ():
            words.append(make_word(word.word, word.start, word.end, word.probability, punctuate))
    return joined_result(texts, words, logprobs, punctuate)
