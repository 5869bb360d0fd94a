"""One session through the local engine: VAD, segments, interims and finals.

How a stream works:
- Silero VAD scores every 32 ms; `Segmenter` keeps the current utterance's audio.
- While someone speaks, the utterance is re-decoded after every `interim_interval`
  seconds of new speech (by need, not on a clock: none during a pause, whose end may
  be a final that replaces it anyway) through the shared `InferenceScheduler` (as an
  interim job, served after finals, least recently served session first) and its text
  goes out as an `InterimResult`. A finalize or stop withdraws the stream's waiting
  interim at once and no new one is asked for until it is answered, so the worker
  does not start a decode the final makes stale.
- `endpointing` ms of silence, a finalize, a stop, or an utterance longer than
  `max_segment_s` cuts the segment; it is decoded as a final job (served before any
  interim) and goes out as a `FinalResult`. Segments are disjoint, so finals never
  overlap, and audio with no speech is never decoded, so silence yields no text.
- A final is decoded with the end of the previous final in front of it (its last
  Whisper segments within `final_context_s`: their audio, and their text as a forced
  start), so a short phrase after a pause ("ask not") is heard in context; only the
  new words come back.
- A pause that has lasted the final's post-roll (200 ms) has its endpoint final decoded at once
  (`local.early_final`); if the endpoint comes with that audio, the final is ready sooner.
- With `commit_agreed`, a long segment is also cut where two consecutive interims agree on
  its words (`local.agreement`), so a stop waits only for the tail after them.
All state of a stream is changed by its one `_run` task; decodes run on the
scheduler's thread and VAD on the engine's `VadWorker` thread, so neither blocks the
event loop. A frame goes to the VAD worker as soon as it arrives (a finalize or stop
queues the VAD flush at once too, keeping the order); `_run` awaits the probabilities
in that same order, so the segmenter sees exactly what inline scoring gave it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from voxrelay.engines.base import (
    EngineError,
    EngineEvent,
    EngineStream,
    EventOutbox,
    FinalResult,
    InterimResult,
    SpeechStarted,
    StreamConfig,
    UtteranceEnd,
)
from voxrelay.engines.local.agreement import AgreementConfig, Commit, PrefixAgreement, spoken
from voxrelay.engines.local.early_final import EarlyFinal
from voxrelay.engines.local.interims import InterimPacer
from voxrelay.engines.local.prompting import keyterm_text
from voxrelay.engines.local.results import agreed_final, dictated, shift, tail_context, word_context
from voxrelay.engines.local.scheduler import FINAL, INTERIM
from voxrelay.engines.local.segmenter import Cut, Segmenter, SegmenterConfig
from voxrelay.engines.local.whisper import Context, Decoded, DecodeRequest
from voxrelay.protocol.dictation import GLOSSARY

if TYPE_CHECKING:
    from voxrelay.engines.local.engine import LocalEngine

__all__ = ["LocalStream"]

log = logging.getLogger(__name__)

_PROMPT_CHARS = 200  # previous finals given to Whisper as context


@dataclass(frozen=True, slots=True)
class _Command:
    kind: str  # "finalize" | "close" (payload: the VAD flush's future) | "interim_done"
    payload: Any = None


@dataclass(frozen=True, slots=True)
class _Frame:
    samples: np.ndarray
    probabilities: asyncio.Future[np.ndarray]  # the VAD worker's scores for `samples`


class LocalStream(EngineStream):
    """One session through the local engine."""

    def __init__(self, engine: LocalEngine, config: StreamConfig) -> None:
        assert engine.decoder is not None and engine.vad_worker is not None and engine.scheduler is not None
        self._engine = engine
        self._decoder = engine.decoder
        self._vad = engine.vad_worker.open()
        self._scheduler = engine.scheduler
        self._config = config
        self._segmenter = Segmenter(
            SegmenterConfig(
                sample_rate=engine.capabilities.sample_rate,
                endpointing_ms=config.endpointing_ms,
                max_segment_s=engine.max_segment_s,
            )
        )
        self._inbox: asyncio.Queue[_Frame | _Command] = asyncio.Queue()
        self._outbox = EventOutbox()
        self._generation = 0  # bumps at every cut; interims of older segments are stale
        self._interims = InterimPacer(engine.interim_interval)
        self._interim_key = object()  # this stream's interims in the scheduler
        settings = engine.settings
        self._agreement = (
            None
            if settings.commit_agreed == "off"
            else PrefixAgreement(
                AgreementConfig(min_pending_s=settings.commit_min_pending_s, margin_s=settings.commit_margin_s)
            )
        )
        self._early = EarlyFinal(self._scheduler) if settings.early_final else None
        self._last_interim = ""
        self._history = ""  # recent final text, the decoding prompt
        self._dictation = config.dictation and config.punctuate  # spoken punctuation (protocol.dictation)
        self._sent = ""  # the last non-empty final as sent: dictation's text before the next result
        self._context: Context | None = None  # the end of the last final, decoded in front of the next
        self._continues = False  # the last cut was inside speech (a length cut or a commit)
        self._last_word_end: float | None = None  # for UtteranceEnd
        self._utterance_end_sent = True
        self._finished = False
        self._task = asyncio.create_task(self._run(), name="local-stream")

    # EngineStream interface.

    async def send_audio(self, audio: bytes | np.ndarray) -> None:
        if isinstance(audio, bytes):
            raise TypeError("the local engine takes float32 PCM; the gateway decodes audio first")
        if not self._finished:
            self._inbox.put_nowait(_Frame(audio, self._vad.score(audio)))

    async def finalize(self) -> None:
        if not self._finished:
            self._stop_coming()
            self._inbox.put_nowait(_Command("finalize", self._vad.flush()))

    async def close(self) -> None:
        if not self._finished:
            self._stop_coming()
            self._inbox.put_nowait(_Command("close", self._vad.flush()))

    async def abort(self) -> None:
        self._finished = True
        self._scheduler.release(self._interim_key)
        if self._early is not None:
            self._early.close()
        self._vad.close()  # here too: a task cancelled before its first step never runs its `finally`
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._outbox.end()

    def events(self) -> AsyncIterator[EngineEvent]:
        return self._outbox.events()

    def _stop_coming(self) -> None:
        # A waiting interim would only take a worker the final needs and be replaced by it: withdraw it now,
        # before the frames queued ahead of the command are handled. Counted here, not in `_run`, so those
        # frames already know that a final is coming.
        self._interims.stop_coming()
        self._scheduler.cancel(self._interim_key)

    # The stream's task: the only place its state changes.

    async def _run(self) -> None:
        try:
            while True:
                item = await self._inbox.get()
                if isinstance(item, _Frame):
                    await self._on_audio(item.samples, await item.probabilities)
                elif item.kind == "interim_done":
                    await self._on_interim(*item.payload)
                elif item.kind == "finalize":
                    await self._flush(await item.payload, from_finalize=True)
                    self._interims.stop_handled()
                elif item.kind == "close":
                    await self._flush(await item.payload, from_finalize=False)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("local stream failed")
            self._emit(EngineError("engine_error", f"the local engine failed: {exc}"))
        finally:
            self._finished = True
            self._scheduler.release(self._interim_key)
            if self._early is not None:
                self._early.close()
            self._vad.close()  # frames queued after a stop or an abort are never scored
            if not self._task.cancelled():
                self._outbox.end()

    async def _on_audio(self, samples: np.ndarray, probs: np.ndarray) -> None:
        self._segmenter.add_audio(samples)
        cut = self._segmenter.add_probabilities(probs)
        self._note_speech_started()
        if cut is not None:
            await self._decode_final(cut, from_finalize=False)
        self._maybe_decode_early()
        self._maybe_utterance_end()
        self._maybe_request_interim()

    async def _flush(self, probs: np.ndarray, *, from_finalize: bool) -> None:
        # `probs` scored the last partial VAD window too, so a word right before stop counts as speech.
        cut = self._segmenter.add_probabilities(probs)
        self._note_speech_started()
        answered = cut is not None
        if cut is not None:
            await self._decode_final(cut, from_finalize=from_finalize)
        cut = self._segmenter.cut_now()
        if cut is not None:
            answered = True
            await self._decode_final(cut, from_finalize=from_finalize)
        if from_finalize and not answered:
            # Every finalize is answered by a from_finalize final (engines.base): empty when nothing was pending,
            # so a client that commits a turn of silence (OpenAI Realtime) still learns the turn is done.
            now = self._segmenter.end_time
            self._emit(FinalResult("", now, now, speech_final=True, from_finalize=True))

    def _note_speech_started(self) -> None:
        started = self._segmenter.speech_started
        if started is not None:
            self._segmenter.speech_started = None
            if self._config.vad_events:
                self._emit(SpeechStarted(started))

    # Decoding.

    def _decode_job(
        self, audio: np.ndarray, final: bool, context: Context | None = None, words: bool = False
    ) -> Decoded:
        return self._decoder.decode_request(self._request(audio, final, context, words))

    def _request(self, audio: np.ndarray, final: bool, context: Context | None, words: bool) -> DecodeRequest:
        cfg = self._config
        return DecodeRequest(
            audio,
            language=cfg.language,
            prompt=(self._history[-_PROMPT_CHARS:] or None) if self._engine.context_prompt else None,
            # With dictation, the commands are primed like keyterms: unprimed, tiny.en hears "comma" as "Kama".
            hotwords=keyterm_text(cfg.keyterms + GLOSSARY if self._dictation else cfg.keyterms),
            beam_size=self._engine.final_beam_size if final else 1,
            # Dictation judges a final's commands by the pauses around them: finals get word timings.
            word_timestamps=words or cfg.word_timings or (final and cfg.dictation and cfg.punctuate),
            punctuate=cfg.punctuate,
            window_pad_s=self._engine.final_window_pad_s if final else self._engine.interim_window_pad_s,
            context=context,
        )

    def _new_segment(self, *, committed: bool = False) -> None:
        self._generation += 1
        self._last_interim = ""
        if not committed:  # after a commit the next interim keeps its pace: this one's rest is shown already
            self._interims.new_segment()
        if self._agreement is not None:
            self._agreement.reset()
        self._scheduler.cancel(self._interim_key)  # a waiting interim is of the segment just cut: stale

    def _maybe_decode_early(self) -> None:
        early, segmenter = self._early, self._segmenter
        if early is None or early.pending_for(segmenter.last_speech_end):
            return
        ready = segmenter.endpoint_audio()
        if ready is None:
            early.drop()  # speech resumed (or no pause yet): an early decode of an older pause is stale
            return
        audio, start = ready
        job = functools.partial(self._decode_job, audio, True, self._context)
        early.start(start, len(audio), segmenter.last_speech_end, self._context, job)

    async def _decode_final(self, cut: Cut, *, from_finalize: bool) -> None:
        early = self._early.take(cut, self._context) if self._early is not None else None
        self._new_segment()
        job = functools.partial(self._decode_job, cut.audio, True, self._context)
        decoded, _timing = await (early or self._scheduler.submit(job, priority=FINAL))
        self._context = tail_context(cut.audio, decoded, self._engine.final_context_s)
        self._send_final(cut, decoded, from_finalize)

    async def _commit(self, commit: Commit, origin: float) -> bool:
        """Cut the segment after agreed words (`local.agreement`) and send them as a final; False: no cut."""
        cut = self._segmenter.cut_between(origin + commit.cut_after - 0.1, origin + commit.cut_before + 0.1)
        if cut is None:
            return False
        self._new_segment(committed=True)
        if self._early is not None:
            self._early.drop()
        self._context = word_context(cut.audio, commit.words, self._engine.final_context_s)
        self._send_final(cut, agreed_final(commit.words), from_finalize=False)
        return True

    def _send_final(self, cut: Cut, decoded: Decoded, from_finalize: bool) -> None:
        self._continues = not cut.speech_final
        text, words = decoded.text, shift(decoded.words, cut.start)
        if self._dictation:
            text, words = dictated(text, words, final=True, before=self._sent)
            self._sent = text or self._sent
        self._emit(
            FinalResult(
                transcript=text,
                start=cut.speech_start,
                end=max(cut.speech_end, cut.speech_start),
                speech_final=cut.speech_final,
                from_finalize=from_finalize,
                confidence=decoded.confidence,
                words=words if self._config.word_timings else (),  # timed for dictation only: not asked for
            )
        )
        if decoded.text:
            self._history = f"{self._history} {decoded.text}".strip()[-_PROMPT_CHARS:]
            self._last_word_end = words[-1].end if words else cut.speech_end
            self._utterance_end_sent = False

    def _maybe_request_interim(self) -> None:
        segmenter = self._segmenter
        if not self._config.interim_results or not self._interims.due(
            speech_start=segmenter.speech_start_time,
            speech_end=segmenter.last_speech_end,
            hearing_speech=segmenter.hearing_speech,
            shown_text=bool(self._last_interim),
        ):
            return
        audio, origin = segmenter.segment_audio()
        self._interims.asked(segmenter.last_speech_end)
        generation, duration = self._generation, len(audio) / self._engine.capabilities.sample_rate
        # Word timings (an alignment pass) only where a commit may come: this decode or the next one agrees.
        timed = self._agreement is not None and duration >= self._agreement.config.min_pending_s - 1.0
        # After a cut inside speech the segment starts mid-sentence, maybe inside a word: with commits on, its
        # interims (whose words become finals) are decoded after the committed audio and text, as finals are.
        context = self._context if self._agreement is not None and self._continues else None
        request = self._request(audio, False, context, timed)
        job = functools.partial(self._decoder.decode_request, request)
        future = self._scheduler.submit(job, priority=INTERIM, key=self._interim_key, batch=request)
        future.add_done_callback(functools.partial(self._interim_finished, generation, origin, duration))

    def _interim_finished(self, generation: int, origin: float, duration: float, future: asyncio.Future[Any]) -> None:
        # Runs as a future callback: hand the result to the stream's task, which owns the state.
        if not self._finished:
            self._inbox.put_nowait(_Command("interim_done", (generation, origin, duration, future)))

    async def _on_interim(self, generation: int, origin: float, duration: float, future: asyncio.Future[Any]) -> None:
        self._interims.answered()
        if future.cancelled():
            return
        if future.exception() is not None:
            raise future.exception()  # type: ignore[misc]
        decoded, _timing = future.result()
        if generation != self._generation:
            return
        timed = decoded.words
        if self._agreement is not None and timed:  # even with a stop on its way: the stop then decodes less
            commit = self._agreement.offer(timed, duration)
            if commit is not None and await self._commit(commit, origin):
                # The rest of this decode is the new segment's first interim.
                rest = spoken(timed)[len(commit.words) :]
                decoded = Decoded(" ".join(w.punctuated_word for w in rest), decoded.confidence, rest)
        if not decoded.text or decoded.text == self._last_interim:
            return
        self._last_interim = decoded.text
        text, words = decoded.text, shift(decoded.words if self._config.word_timings else (), origin)
        start = words[0].start if words else origin
        if self._dictation:  # an interim may still show a command word; its final decides
            text, words = dictated(text, words, final=False, before=self._sent)
        self._emit(InterimResult(text, start, self._segmenter.end_time, decoded.confidence, words))

    def _maybe_utterance_end(self) -> None:
        gap_ms = self._config.utterance_end_ms
        if gap_ms is None or self._utterance_end_sent or self._last_word_end is None:
            return
        if self._segmenter.in_speech:
            return
        if self._segmenter.end_time - self._last_word_end >= gap_ms / 1000:
            self._utterance_end_sent = True
            self._emit(UtteranceEnd(self._last_word_end))

    def _emit(self, event: EngineEvent) -> None:
        self._outbox.put(event)
