"""LocalStream on real corpus audio, fed as fast as the CPU allows (no server; finals depend only on audio)."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.support import clip, normalize, silence, wer
from voxrelay.bench.offline import stream_finals
from voxrelay.engines.base import FinalResult, InterimResult, StreamConfig
from voxrelay.engines.local.early_final import EarlyFinal
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.scheduler import FINAL, INTERIM
from voxrelay.engines.local.settings import LocalSettings

# Clips with pauses inside: each streams as two or more finals, most after a short pause.
MULTI_FINAL = [
    "jfk_inaugural.wav",
    "s04_numbers_phone.wav",
    "s12_pause_shopping.wav",
    "s13_pause_letter.wav",
    "ljspeech_LJ001-0001.wav",
    "s11_long_paragraph.wav",
]


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    engine = LocalEngine()
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.stop())


def stream(engine: LocalEngine, name: str, **options: object) -> list[FinalResult]:
    audio = np.concatenate([clip(name).pcm(), silence(1.0)])

    async def run() -> list[FinalResult]:
        return await stream_finals(engine, audio, **options)  # type: ignore[arg-type]

    return asyncio.run(run())


def transcripts(engine: LocalEngine, context_s: float, endpointing_ms: int) -> list[str]:
    saved, engine.final_context_s = engine.final_context_s, context_s
    try:
        finals = [stream(engine, name, endpointing_ms=endpointing_ms) for name in MULTI_FINAL]
    finally:
        engine.final_context_s = saved
    assert all(len(f) >= 2 for f in finals), [len(f) for f in finals]
    return [" ".join(r.transcript for r in f if r.transcript) for f in finals]


@pytest.mark.parametrize("endpointing_ms", [200, 300])
def test_context_of_the_previous_final_lowers_wer(engine: LocalEngine, endpointing_ms: int) -> None:
    references = [clip(name).reference for name in MULTI_FINAL]
    alone = wer(references, transcripts(engine, 0.0, endpointing_ms))
    with_context = wer(references, transcripts(engine, 3.0, endpointing_ms))
    print(f"endpointing {endpointing_ms} ms: WER {alone:.3f} alone, {with_context:.3f} with context")
    assert with_context <= alone - 0.01


def test_finals_with_context_hold_only_their_own_words(engine: LocalEngine) -> None:
    for name in MULTI_FINAL:
        finals = [f.transcript for f in stream(engine, name, endpointing_ms=200) if f.transcript]
        # Numbers are left out of the count: how Whisper groups digits ("555-213-4498", "555. / 213 / 449-8")
        # changes it, while the normalised reference is one number; repeated words are what this looks for.
        spoken = [w for w in normalize(" ".join(finals)).split() if not w.isdigit()]
        said = [w for w in normalize(clip(name).reference).split() if not w.isdigit()]
        assert len(spoken) <= len(said) + 2, (name, finals)
        for earlier, later in itertools.pairwise(finals):
            tail = normalize(earlier).split()[-3:]
            assert len(tail) < 3 or normalize(later).split()[:3] != tail, (name, finals)


def test_an_endpoint_final_decoded_during_its_pause_is_the_same_final(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Early finals: an endpoint's final comes from the decode started at its post-roll, with the text it had
    without that decode (the same audio and context), and the final after the stop is decoded as before."""
    taken: list[bool] = []
    take = EarlyFinal.take

    def counting_take(self: EarlyFinal, cut: Any, context: object) -> Any:
        future = take(self, cut, context)
        taken.append(future is not None)
        return future

    monkeypatch.setattr(EarlyFinal, "take", counting_take)
    names = ["jfk_inaugural.wav", "s12_pause_shopping.wav", "s13_pause_letter.wav"]
    early = [[f.transcript for f in stream(engine, name)] for name in names]
    assert sum(taken) >= len(names), taken  # every clip had at least one endpoint answered early
    monkeypatch.setattr(engine.settings, "early_final", False)
    taken.clear()
    assert [[f.transcript for f in stream(engine, name)] for name in names] == early
    assert taken == []
    assert wer([clip(n).reference for n in names], [" ".join(t) for t in early]) <= 0.2


def test_word_timings_of_a_final_decoded_with_context(engine: LocalEngine) -> None:
    """Words of the context are not the final's: its words match its transcript and lie in its own audio."""
    for name in ["jfk_inaugural.wav", "s13_pause_letter.wav"]:
        finals = [f for f in stream(engine, name, word_timings=True) if f.transcript]
        assert len(finals) >= 2
        previous_end = 0.0
        for final in finals:
            assert final.words
            assert wer([final.transcript], [" ".join(w.punctuated_word or w.word for w in final.words)]) <= 0.1
            for word in final.words:
                # The segment starts up to the 300 ms pre-roll before its speech.
                assert final.start - 0.35 <= word.start <= word.end <= final.end + 0.25, (final.transcript, word)
                assert word.start >= previous_end - 0.05
                previous_end = word.start


def test_vad_runs_on_the_worker_thread_and_abort_drops_its_work(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Silero call of a stream runs on the engine's VAD worker, never on the event loop's thread."""
    assert engine.vad is not None and engine.vad_worker is not None
    threads: set[str] = set()
    score = engine.vad.probabilities

    def recording(*args: object, **kwargs: object) -> np.ndarray:
        threads.add(threading.current_thread().name)
        return score(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.vad, "probabilities", recording)
    finals = stream(engine, "s01_command_lights.wav")
    assert finals and threads == {"vad-worker"}

    async def abort_mid_stream() -> int:
        live = await engine.open(StreamConfig(interim_results=False))
        audio = clip("s11_long_paragraph.wav").pcm()
        for offset in range(0, len(audio), 800):
            await live.send_audio(audio[offset : offset + 800])
        await live.abort()
        return engine.vad_worker.queued if engine.vad_worker else -1

    assert asyncio.run(abort_mid_stream()) == 0


def test_agreed_words_of_a_long_utterance_are_committed_while_it_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """With `commit_agreed`, a long sentence is cut where interims agree (speech_final false) and loses no words.

    Frames are paced at twice real time and each waits for the decodes asked for so far: every interim is answered
    before much more audio comes, as on a quiet machine at real-time pace, however loaded this one is.
    """
    engine = LocalEngine(LocalSettings(commit_agreed="text", max_segment_s=30.0))  # no length cut: commits only
    long = clip("ljspeech_LJ001-0003.wav")
    audio = np.concatenate([long.pcm(), silence(1.0)])

    async def run() -> tuple[list[FinalResult], list[InterimResult]]:
        await engine.start()
        assert engine.scheduler is not None
        decodes: list[asyncio.Future[object]] = []
        submit = engine.scheduler.submit

        def recorded(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            decodes.append(submit(*args, **kwargs))
            return decodes[-1]

        monkeypatch.setattr(engine.scheduler, "submit", recorded)
        stream = await engine.open(StreamConfig(interim_results=True, vad_events=False))
        events: list[object] = []

        async def collect() -> None:
            async for event in stream.events():
                events.append(event)

        collector = asyncio.create_task(collect())
        for offset in range(0, len(audio), 800):
            await stream.send_audio(audio[offset : offset + 800])
            await asyncio.sleep(0.025)  # the pace: twice real time, as a client's frames come
            pending = [d for d in decodes if not d.done()]
            if pending:
                await asyncio.wait(pending)
        await stream.close()
        await collector
        await engine.stop()
        return [e for e in events if isinstance(e, FinalResult)], [e for e in events if isinstance(e, InterimResult)]

    finals, interims = asyncio.run(run())
    committed = [f for f in finals if not f.speech_final]
    assert committed, [f.transcript for f in finals]  # ~9.7 s without a pause: cut at least once
    assert finals[-1].speech_final
    for earlier, later in itertools.pairwise(finals):
        assert earlier.end <= later.start + 1e-6  # disjoint, in order
    text = " ".join(f.transcript for f in finals if f.transcript)
    assert wer([long.reference], [text]) <= 0.15, text
    assert all(not i.words for i in interims)  # timed for the agreement only: words were not asked for


def test_interims_of_sessions_waiting_together_are_decoded_as_one_batch() -> None:
    """With the worker busy, three sessions' interims wait; the next free worker decodes them in one batch, and
    each session gets the words of its own audio."""
    engine = LocalEngine(LocalSettings(decode_workers=1, interim_batch=4, early_final=False))
    names = ["s10_dictation_email.wav", "librivox_sas_0870.wav", "s07_names_message.wav"]  # no pause in 2 s

    async def run() -> tuple[list[int], list[list[InterimResult]]]:
        await engine.start()
        assert engine.scheduler is not None
        scheduler = engine.scheduler
        batches: list[int] = []
        run_batch = scheduler._batch_runner
        assert run_batch is not None

        def recording(items: list[Any]) -> list[Any]:
            batches.append(len(items))
            return run_batch(items)

        scheduler._batch_runner = recording
        held, release = threading.Event(), threading.Event()

        def blocker() -> None:
            held.set()
            release.wait(30)

        blocked = scheduler.submit(blocker, priority=FINAL)
        assert await asyncio.to_thread(held.wait, 30)
        queued, waiting = asyncio.Event(), []
        submit = scheduler.submit

        def counting(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
            future = submit(*args, **kwargs)
            if kwargs.get("priority") == INTERIM:
                waiting.append(future)
            if sum(not f.done() for f in waiting) >= len(names):
                queued.set()
            return future

        scheduler.submit = counting  # type: ignore[method-assign]
        streams = [await engine.open(StreamConfig(interim_results=True, vad_events=False)) for _ in names]
        interims: list[list[InterimResult]] = [[] for _ in names]
        answered = asyncio.Event()
        for live in streams:
            live._interims.first_s = 1.5  # one interim each, of 1.5 s of speech: words to check

        async def collect(i: int) -> None:
            async for event in streams[i].events():
                if isinstance(event, InterimResult):
                    interims[i].append(event)
                    if all(interims):
                        answered.set()

        collectors = [asyncio.create_task(collect(i)) for i in range(len(names))]
        for live, name in zip(streams, names, strict=True):
            audio = clip(name).pcm()[: 2 * 16000]
            for offset in range(0, len(audio), 800):
                await live.send_audio(audio[offset : offset + 800])
        await asyncio.wait_for(queued.wait(), 30)  # each session's interim waits behind the held worker
        release.set()
        await blocked
        await asyncio.wait_for(answered.wait(), 60)  # each session's first interim, decoded in the batch
        for live in streams:
            await live.abort()
        await asyncio.gather(*collectors)
        await engine.stop()
        return batches, interims

    batches, interims = asyncio.run(asyncio.wait_for(run(), 120))
    assert batches[:1] == [3], batches
    references = {name: set(normalize(clip(name).reference).split()) for name in names}
    for name, got in zip(names, interims, strict=True):
        said = normalize(got[0].transcript).split()
        heard = {other: sum(w in words for w in said) / max(1, len(said)) for other, words in references.items()}
        # Its own clip's words, not another session's: a mix-up in the batch would swap whole sentences.
        assert heard[name] >= 0.5 and all(heard[name] > v for o, v in heard.items() if o != name), (name, said, heard)
