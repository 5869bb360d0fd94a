"""Whole-file decoding on the local engine: below live jobs, one window per job, stoppable, and as faster-whisper decodes."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.support import clip, normalize, silence, wer
from voxrelay.engines.files import FileRequest
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.files import transcribe_file
from voxrelay.engines.local.scheduler import FILE, FINAL, INTERIM, InferenceScheduler


@dataclass
class FakeSegment:
    id: int
    start: float
    end: float
    text: str
    seek: int = 0
    tokens: list[int] = field(default_factory=lambda: [1, 2])
    temperature: float = 0.0
    avg_logprob: float = -0.2
    compression_ratio: float = 1.2
    no_speech_prob: float = 0.01
    words: list[Any] | None = None


@dataclass
class FakeInfo:
    language: str = "en"


class SteppedModel:
    """A model whose segment generator records each step in `order`; step `hold` waits for `release`."""

    def __init__(self, segments: int, hold: int | None = None) -> None:
        self.segments = segments
        self.hold = hold
        self.holding = threading.Event()
        self.release = threading.Event()
        self.order: list[str] = []
        self.closed = threading.Event()
        self.options: dict[str, Any] = {}

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[Iterator[FakeSegment], FakeInfo]:
        self.options = options
        return self._generate(), FakeInfo()

    def _generate(self) -> Iterator[FakeSegment]:
        try:
            for i in range(self.segments):
                if i == self.hold:
                    self.holding.set()
                    assert self.release.wait(10)
                self.order.append(f"file-{i}")
                yield FakeSegment(i, float(i), i + 1.0, f" part {i}")
        finally:
            self.closed.set()


def recorder(order: list[str], name: str):  # type: ignore[no-untyped-def]
    def run() -> str:
        order.append(name)
        return name

    return run


async def test_file_steps_run_after_every_queued_live_job() -> None:
    scheduler = InferenceScheduler(workers=1)
    gate, blocking = threading.Event(), threading.Event()
    order: list[str] = []

    def blocker() -> None:
        blocking.set()
        gate.wait(10)

    try:
        held = scheduler.submit(blocker, priority=FINAL)
        assert await asyncio.to_thread(blocking.wait, 10)
        file_step = scheduler.submit(recorder(order, "file"), priority=FILE)  # queued first
        interim = scheduler.submit(recorder(order, "interim"), priority=INTERIM, key="s1")
        final = scheduler.submit(recorder(order, "final"), priority=FINAL)
        gate.set()
        await asyncio.gather(held, file_step, interim, final)
        assert order == ["final", "interim", "file"]
    finally:
        gate.set()
        scheduler.close()


async def test_a_live_final_submitted_during_a_file_window_runs_before_the_next_window() -> None:
    scheduler = InferenceScheduler(workers=1)
    model = SteppedModel(segments=4, hold=1)  # the worker holds inside the file's second window
    try:
        transcript = await transcribe_file(model, scheduler, FileRequest(silence(3.0)), 16000)
        texts: list[str] = []

        async def consume() -> None:
            async for segment in transcript.segments:
                texts.append(segment.text)

        consumer = asyncio.create_task(consume())
        assert await asyncio.to_thread(model.holding.wait, 10)  # window 1 is being decoded now
        final = scheduler.submit(recorder(model.order, "live-final"), priority=FINAL)
        interim = scheduler.submit(recorder(model.order, "live-interim"), priority=INTERIM, key="s1")
        model.release.set()
        await asyncio.gather(final, interim, consumer)
        # The live jobs waited for the window in hand only, not for the rest of the file.
        assert model.order == ["file-0", "file-1", "live-final", "live-interim", "file-2", "file-3"]
        assert texts == [" part 0", " part 1", " part 2", " part 3"]
        assert transcript.duration == pytest.approx(3.0)
    finally:
        model.release.set()
        scheduler.close()


async def test_closing_the_segments_stops_the_decoding() -> None:
    scheduler = InferenceScheduler(workers=1)
    model = SteppedModel(segments=50)
    try:
        transcript = await transcribe_file(model, scheduler, FileRequest(silence(1.0), prompt="Hi."), 16000)
        segments = transcript.segments
        got = [await anext(segments), await anext(segments)]
        await segments.aclose()  # type: ignore[attr-defined]
        assert model.closed.is_set()
        await scheduler.submit(lambda: None, priority=FILE)  # anything still queued has run by now
        assert model.order == ["file-0", "file-1"] and [s.id for s in got] == [0, 1]
        assert model.options["initial_prompt"] == "Hi." and model.options["beam_size"] == 5
        assert model.options["condition_on_previous_text"] is True and "temperature" not in model.options
    finally:
        scheduler.close()


async def test_closing_during_a_window_closes_the_generator_after_it() -> None:
    scheduler = InferenceScheduler(workers=1)
    model = SteppedModel(segments=50, hold=1)
    try:
        transcript = await transcribe_file(model, scheduler, FileRequest(silence(1.0), temperature=0.4), 16000)
        segments = transcript.segments
        await anext(segments)
        pending = asyncio.ensure_future(anext(segments))
        assert await asyncio.to_thread(model.holding.wait, 10)
        pending.cancel()  # the client went away while window 1 decodes
        with pytest.raises(asyncio.CancelledError):
            await pending
        await segments.aclose()  # type: ignore[attr-defined]
        model.release.set()
        assert await asyncio.to_thread(model.closed.wait, 10)
        await scheduler.submit(lambda: None, priority=FILE)
        assert model.order == ["file-0", "file-1"]
        assert model.options["temperature"] == 0.4
    finally:
        model.release.set()
        scheduler.close()


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    engine = LocalEngine()
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.stop())


def test_the_engine_decodes_a_file_as_whole_file_faster_whisper_does(engine: LocalEngine) -> None:
    names = ["jfk_inaugural.wav", "s11_long_paragraph.wav", "fw_stereo_left.wav"]
    audio = np.concatenate([np.concatenate([clip(n).pcm(), silence(0.5)]) for n in names])
    references = " ".join(clip(n).reference for n in names)

    async def run() -> tuple[str, list[Any], str]:
        transcript = await engine.transcribe_file(FileRequest(audio, word_timings=True))
        segments = [s async for s in transcript.segments]
        return transcript.language, segments, transcript.language

    language, segments, _ = asyncio.run(run())
    assert engine.decoder is not None
    expected, _info = engine.decoder.model.transcribe(audio, beam_size=5, word_timestamps=True)
    whole_file = "".join(s.text for s in expected)
    text = "".join(s.text for s in segments)
    assert language == "en" and len(segments) >= 2
    assert wer([whole_file], [text]) <= 0.02, (whole_file, text)
    assert wer([references], [text]) <= 0.15, (references, text)
    duration = len(audio) / 16000
    for previous, segment in itertools.pairwise(segments):
        assert previous.start <= segment.start
    for segment in segments:
        assert 0 <= segment.start < segment.end <= duration + 0.5 and segment.tokens
        assert segment.words and all(segment.start - 0.5 <= w.start <= w.end <= segment.end + 0.5 for w in segment.words)
    assert normalize(" ".join(w.word for s in segments for w in s.words)) == normalize(text)
