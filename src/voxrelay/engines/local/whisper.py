"""The faster-whisper model behind the local engine: load it, decode one segment.

`WhisperDecoder.decode` is blocking and runs on the inference scheduler's thread;
it materialises faster-whisper's lazy segment generator there, so no decoding work
leaks onto the event loop. Known hallucinations are dropped here: segments Whisper
itself marks as "no speech", and runaway repetitions.

A short segment decoded alone has no context ("ask not" heard as "S NOT"); with a
`Context` (the audio just before the segment and what was said in it), the context
audio is encoded in front of the segment and its text is forced as the start of the
transcript, so Whisper only has to continue it, as it does inside a whole file.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from voxrelay.engines.base import Word
from voxrelay.engines.local.decoded import (
    LEADING_PUNCTUATION,
    LOW_LOGPROB,
    NO_SPEECH_PROB,
    SHORT_WINDOW_MAX_S,
    Context,
    Decoded,
    DecodeRequest,
    Span,
    joined_result,
    make_word,
)
from voxrelay.engines.local.full_window import decode_full
from voxrelay.engines.local.model_files import resolve_model, token_model
from voxrelay.engines.local.prompting import previous_text, transcript_tokenizer
from voxrelay.engines.local.token_guards import (
    cut_loop,
    drop_repeats,
    max_length,
    repeat_key,
    timed_segments,
    token_budget,
)

if TYPE_CHECKING:
    from voxrelay.engines.local.settings import LocalSettings

__all__ = ["LEADING_PUNCTUATION", "Context", "DecodeRequest", "Decoded", "Span", "WhisperDecoder"]

log = logging.getLogger(__name__)
# faster-whisper logs every call at INFO; keep it quiet unless asked for.
if logging.getLogger("faster_whisper").level == logging.NOTSET:
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)

_DIGITAL_SILENCE = 1e-4  # peak under -80 dBFS: nothing was recorded
# A context's text is forced without its final punctuation: after a forced "." Whisper
# takes the speech as finished and often says nothing more.
_SENTENCE_END = ".!?,;:"


class WhisperDecoder:
    """One loaded Whisper model, shared by every local session."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        workers: int = 1,
        token_threads: int = 0,
    ) -> None:
        """`cpu_threads` run the encoder (0: CTranslate2's default); `token_threads` > 0 gives the token loop
        (generation, word alignment) a second handle on the same model files with that many threads (CPU only;
        none when it equals `cpu_threads`: a copy with the same threads cost ~50 MB and decoded no faster)."""
        from faster_whisper import WhisperModel

        self.model_name = model
        self._model = WhisperModel(
            resolve_model(model),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=workers,  # concurrent decode calls from that many threads
        )
        # The token loop multiplies small matrices one step at a time: on two cores, two threads syncing at every
        # step decode ~2x slower than one (tiny.en, same tokens; docs/benchmarks.md), while the encoder's big
        # matrices gain from both. So tokens may run on their own one-thread handle (~50 MB RSS for tiny.en),
        # needed only where the encoder has more threads than the token loop.
        self._tokens: Any = self._model.model
        self._aligner: Any = self._model
        if token_threads > 0 and token_threads != cpu_threads and device == "cpu":
            self._tokens = token_model(model, compute_type, token_threads, workers)
            self._aligner = copy.copy(self._model)  # faster-whisper's alignment, run by the token handle
            self._aligner.model = self._tokens
        self.multilingual = bool(self._model.model.is_multilingual)
        from faster_whisper.transcribe import get_suppressed_tokens

        self._tokenizer = transcript_tokenizer(self._model.hf_tokenizer, self.multilingual, None)
        self._suppressed = list(get_suppressed_tokens(self._tokenizer, [-1]))

    @classmethod
    def from_settings(cls, settings: LocalSettings) -> WhisperDecoder:
        """The decoder `settings` describe (model, device, compute type, threads, workers)."""
        return cls(
            settings.model,
            settings.device,
            settings.compute_type,
            settings.cpu_threads,
            workers=settings.decode_workers,
            token_threads=settings.token_threads,
        )

    @property
    def model(self) -> Any:
        """The faster-whisper `WhisperModel` (whole-file decoding runs its own `transcribe`)."""
        return self._model

    def decode_request(self, request: DecodeRequest) -> Decoded:
        """`decode` with the arguments of `request`."""
        return self.decode(**{field.name: getattr(request, field.name) for field in dataclasses.fields(request)})

    def decode_batch(self, requests: Sequence[DecodeRequest]) -> list[Decoded]:
        """Decode several requests of one `group` at once (blocking); results in the same order.

        One token loop serves the whole batch: its steps multiply small matrices and stream the vocabulary
        projection's weights from memory once for every sequence, so on a 2-core AMD EPYC four interims took
        ~70 ms each instead of ~105 alone (docs/benchmarks.md). Every window is padded to the longest one's
        length (more silence than `window_pad_s`, which Whisper takes as well); requests that are not
        batchable, or whose audio is digital silence, are decoded alone.
        """
        results: list[Decoded | None] = [None] * len(requests)
        batch = []
        for i, request in enumerate(requests):
            alone = request.group is None or (self.multilingual and request.language is None)  # detected per window
            if alone or float(np.abs(request.audio).max(initial=0.0)) < _DIGITAL_SILENCE:
                results[i] = self.decode_request(request)
            else:
                batch.append(i)
        if len(batch) == 1:
            results[batch[0]] = self.decode_request(requests[batch[0]])
        elif batch:
            for i, decoded in zip(batch, self._decode_together([requests[i] for i in batch]), strict=True):
                results[i] = decoded
        return [r if r is not None else Decoded("", 0.0) for r in results]

    def _decode_together(self, requests: list[DecodeRequest]) -> list[Decoded]:
        import ctranslate2

        first = requests[0]
        pad_frames = max(len(r.audio) // 160 + 1 + int((r.window_pad_s or 0.0) * 100) for r in requests)
        frames = min(3000, pad_frames)
        windows = [self._window(r.audio, frames) for r in requests]
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(np.stack(windows)), to_cpu=False)
        tokenizer = self._tokenizer_for(first.language, encoded)
        previous = previous_text(tokenizer, hotwords=first.hotwords, prompt=None)
        budgets = [token_budget(len(r.audio) / 16000) for r in requests]
        results = self._tokens.generate(
            encoded,
            [[*previous, *tokenizer.sot_sequence]] * len(requests),
            beam_size=1,
            max_length=max_length(max(budgets), len(previous)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
            max_initial_timestamp_index=50,
        )
        return [
            self._finish(result, tokenizer, [], (), 0.0, len(r.audio) / 16000, budget, r.punctuate, None)
            for r, result, budget in zip(requests, results, budgets, strict=True)
        ]

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
        context: Context | None = None,
    ) -> Decoded:
        """Transcribe one segment of 16 kHz float32 mono audio (blocking).

        Whisper pads every input to a 30 s window, and the encoder's cost follows the
        window. With `window_pad_s`, only the audio plus that much padding is encoded
        (guarded against the repetitions Whisper makes on short windows). On the corpus
        (tiny.en, greedy): pad 2 s costs ~1/3 of the full window at +0.8 WER points; pad
        8 s about half, and WER 5.5 % against 6.3 % for the full window (padding then log-mel zeros; as
        silence, see `_encode`, finals take 6 s). None = 30 s. Digital silence decodes to nothing.

        `context` (short windows only) is decoded in front of the segment, and only what
        comes after its text is returned; see `Context`. When Whisper finds nothing new
        after it, or context and segment do not fit the window, the segment is decoded alone.
        """
        if window_pad_s is not None and len(audio) < (SHORT_WINDOW_MAX_S * 16000):
            if not len(audio) or float(np.abs(audio).max()) < _DIGITAL_SILENCE:
                return Decoded("", 0.0)  # a muted input: Whisper answers "you" to it in a window of silence
            pad_s = window_pad_s

            def short(context: Context | None) -> Decoded:
                return self._decode_short(
                    audio,
                    language=language,
                    prompt=prompt,
                    hotwords=hotwords,
                    pad_s=pad_s,
                    beam_size=beam_size,
                    word_timestamps=word_timestamps,
                    punctuate=punctuate,
                    context=context,
                )

            fits = context is not None and len(context.audio) + len(audio) < SHORT_WINDOW_MAX_S * 16000
            if context is not None and fits and any(c.isalnum() for c in context.text):
                decoded = short(context)
                if decoded.text:
                    return decoded
            return short(None)
        return decode_full(
            self._model,
            audio,
            language=language,
            prompt=prompt,
            hotwords=hotwords,
            beam_size=beam_size,
            word_timestamps=word_timestamps,
            punctuate=punctuate,
        )

    def _decode_short(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        prompt: str | None,
        hotwords: str | None,
        pad_s: float,
        beam_size: int,
        word_timestamps: bool,
        punctuate: bool,
        context: Context | None = None,
    ) -> Decoded:
        offset = 0.0  # seconds of context in front of the segment
        prefix: list[int] = []  # forced tokens after the start of transcript
        seen: tuple[str, ...] = ()
        if context is not None:
            offset = len(context.audio) / 16000
            audio = np.concatenate([context.audio, audio])
        encoded, frames = self._encode(audio, pad_s)
        tokenizer = self._tokenizer_for(language, encoded)
        if context is not None:
            spoken = context.text.strip().rstrip(_SENTENCE_END)
            prefix = [tokenizer.timestamp_begin, *tokenizer.encode(" " + spoken)]
            seen = (repeat_key(spoken),)
        duration = len(audio) / 16000 - offset
        previous = previous_text(tokenizer, hotwords=hotwords, prompt=prompt)  # keyterms, prompt: see `prompting`
        # Whisper on a short window tends to repeat the utterance; a cap from the fastest plausible speech
        # rate bounds the damage and the cost (see `max_length`: the earlier text counts in it too).
        budget = token_budget(duration, len(prefix))
        result = self._tokens.generate(
            encoded,
            [[*previous, *tokenizer.sot_sequence, *prefix]],
            beam_size=beam_size,
            max_length=max_length(budget, len(previous)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed,
            max_initial_timestamp_index=50,
        )[0]
        aligned = (encoded, frames, word_timestamps)
        return self._finish(result, tokenizer, prefix, seen, offset, duration, budget, punctuate, context, aligned)

    def _finish(
        self,
        result: Any,
        tokenizer: Any,
        prefix: list[int],
        seen: tuple[str, ...],
        offset: float,
        duration: float,
        budget: int,
        punctuate: bool,
        context: Context | None,
        aligned: tuple[Any, int, bool] | None = None,
    ) -> Decoded:
        """A short window's `Decoded` from CTranslate2's result: guards, text, and word timings if asked for."""
        # The result starts with the forced prefix; what follows it continues the prefix's
        # segment, which begins (for the segment's own clock) at its first sample.
        ids = result.sequences_ids[0][:budget]  # a batch's token cap is its longest window's
        generated = ids[len(prefix) :]
        timed = timed_segments(generated, tokenizer, offset)
        segments = drop_repeats([(max(0.0, t - offset), tokens) for t, tokens in timed], tokenizer, duration, seen)
        if len(ids) >= budget:  # ran to its cap: a loop at its end is not speech
            segments = cut_loop(segments, tokenizer)
        tokens = [token for _, segment in segments for token in segment]
        if not tokens or (result.no_speech_prob > NO_SPEECH_PROB and result.scores[0] < LOW_LOGPROB * len(tokens)):
            return Decoded("", 0.0)
        text = tokenizer.decode(tokens).strip()
        if not any(c.isalnum() for c in text):
            return Decoded("", 0.0)  # "." or "..." alone: Whisper's answer to silence, not speech
        # The context's final already ended its sentence for the reader: start a new one.
        capitalize = context is not None and context.text.rstrip()[-1:] in ".!?"
        if context is not None:
            text = text.lstrip(LEADING_PUNCTUATION)  # ", differs from..." continues a sentence
            text = text[0].upper() + text[1:] if capitalize else text
        words: list[Word] = []
        if aligned is not None and aligned[2]:
            words = self._align(tokenizer, tokens, prefix[1:], aligned[0], aligned[1], offset, punctuate)
            if capitalize and words and punctuate:
                first = words[0].punctuated_word
                words[0] = dataclasses.replace(words[0], punctuated_word=first[:1].upper() + first[1:])
        logprob = result.scores[0] / max(1, len(tokens) + 1)
        spans = tuple(Span(start, tokenizer.decode(segment)) for start, segment in segments)
        return joined_result([text], words, [logprob], punctuate, spans)

    def _encode(self, audio: np.ndarray, pad_s: float) -> tuple[Any, int]:
        """The encoder output for `audio` plus `pad_s` of silence, and how many mel frames hold audio.

        The padding is silent audio, as Whisper was trained on (openai/whisper pads zero samples before its
        log-mel, so padding frames sit 8 dB under the loudest), not zeros in the log-mel as faster-whisper pads
        (for Whisper a level, not silence). With silence, 6 s of padding lost no word on the corpus where 8 s of
        log-mel zeros were needed (docs/benchmarks.md); the audio's own frames are the same either way.
        """
        import ctranslate2

        content = (len(audio) + 160) // 160  # the feature extractor's frames of `audio` (hop 160)
        frames = min(3000, content + int(pad_s * 100))  # 100 mel frames per second
        window = self._window(audio, frames)[np.newaxis]
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(window), to_cpu=False)
        return encoded, min(content, frames)

    def _window(self, audio: np.ndarray, frames: int) -> np.ndarray:
        """The log-mel window of `frames` frames for `audio` followed by silence (n_mels x frames)."""
        content = (len(audio) + 160) // 160
        features = self._model.feature_extractor(np.pad(audio, (0, (frames - min(content, frames)) * 160)))
        window = np.zeros((features.shape[0], frames), dtype=np.float32)
        held = min(features.shape[-1], frames)
        window[:, :held] = features[:, :held]
        return window

    def _tokenizer_for(self, language: str | None, encoded: Any) -> Any:
        """The tokenizer that starts the transcript in `language` (multilingual models: detected if None)."""
        if not self.multilingual:
            return self._tokenizer
        if language is None:  # Whisper's own guess from this window: its likeliest language token
            language = self._model.model.detect_language(encoded)[0][0][0].strip("<|>")
        return transcript_tokenizer(self._model.hf_tokenizer, True, language)

    def _align(
        self,
        tokenizer: Any,
        tokens: list[int],
        forced: list[int],
        encoded: Any,
        frames: int,
        offset: float,
        punctuate: bool,
    ) -> list[Word]:
        """Word timings of `tokens`, aligned after the `forced` context tokens, on the segment's clock."""
        aligned = self._aligner.find_alignment(tokenizer, [forced + tokens], encoded, frames)[0]
        words: list[Word] = []
        seen = 0  # tokens of the alignment consumed so far
        for word in aligned:
            first, seen = seen, seen + len(word["tokens"])
            if seen <= len(forced):
                continue  # a word of the context
            # A word that straddles the context's end keeps only its new part.
            new_part = word["tokens"][max(0, len(forced) - first) :]
            spoken = word["word"] if first >= len(forced) else tokenizer.decode(new_part)
            if forced and not words and not any(c.isalnum() for c in spoken):
                continue  # punctuation that closes the context's sentence, dropped from the text too
            start, end = max(0.0, word["start"] - offset), max(0.0, word["end"] - offset)
            words.append(make_word(spoken, start, end, word["probability"], punctuate))
        return words
