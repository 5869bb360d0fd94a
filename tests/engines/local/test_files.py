"""Whole-file decoding on the local engine: on its own lane beside live jobs, one window per step, stoppable, and as faster-whisper decodes."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import clip, normalize, silence, wer
from voxrelay.engines.base import EngineFailure
from voxrelay.engines.files import FileRequest
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.file_lane import FileLane
from voxrelay.engines.local.files import transcribe_file
from voxrelay.engines.local.scheduler import FINAL, INTERIM, InferenceScheduler


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


def lane_of(model: SteppedModel, on_timing: Any = None) -> FileLane:
    return FileLane(lambda: model, on_timing=on_timing)


async def test_a_live_final_runs_to_completion_while_a_file_window_decodes() -> None:
    scheduler = InferenceScheduler(workers=1)
    model = SteppedModel(segments=4, hold=1)  # the file lane holds inside the file's second window
    lane = lane_of(model)
    try:
        transcript = await transcribe_file(lane, FileRequest(silence(3.0)), 16000)
        texts: list[str] = []

        async def consume() -> None:
            async for segment in transcript.segments:
                texts.append(segment.text)

        consumer = asyncio.create_task(consume())
        assert await asyncio.to_thread(model.holding.wait, 10)  # window 1 is being decoded now
        # The window stays held until the live jobs are done: had they waited for it, this would never finish.
        final = scheduler.submit(recorder(model.order, "live-final"), priority=FINAL)
        interim = scheduler.submit(recorder(model.order, "live-interim"), priority=INTERIM, key="s1")
        (result, _), _ = await asyncio.wait_for(asyncio.gather(final, interim), 10)
        assert result == "live-final" and model.holding.is_set() and not model.release.is_set()
        model.release.set()
        await consumer
        assert model.order == ["file-0", "live-final", "live-interim", "file-1", "file-2", "file-3"]
        assert texts == [" part 0", " part 1", " part 2", " part 3"]
        assert transcript.duration == pytest.approx(3.0)
    finally:
        model.release.set()
        scheduler.close()
        lane.close()


async def test_the_lane_loads_its_model_on_the_first_file_and_releases_it_on_close() -> None:
    loads: list[threading.Thread] = []
    model = SteppedModel(segments=1)
    timings: list[Any] = []

    def load() -> SteppedModel:
        loads.append(threading.current_thread())
        return model

    lane = FileLane(load, on_timing=timings.append)
    try:
        assert lane.model is None and not loads, "nothing loads before an upload"
        for _ in range(2):
            transcript = await transcribe_file(lane, FileRequest(silence(1.0)), 16000)
            assert [s.text async for s in transcript.segments] == [" part 0"]
        assert len(loads) == 1 and loads[0] is not threading.current_thread() and lane.model is model
        assert len(timings) == 6  # transcribe() and two next() calls, per file
    finally:
        lane.close()
    assert lane.model is None
    with pytest.raises(RuntimeError):
        lane.submit(lambda model: None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux only")
async def test_the_lane_runs_its_steps_at_the_lower_cpu_priority() -> None:
    lane = FileLane(lambda: None, nice=7)
    try:
        lane_nice = await lane.submit(lambda _model: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # the lane's thread started from this one
        assert lane_nice == min(19, here + 7), "the lane lowers its priority by `nice`; this thread keeps its own"
    finally:
        lane.close()


async def test_a_model_that_cannot_load_fails_the_upload_clearly_and_the_lane_tries_again() -> None:
    attempts: list[int] = []
    model = SteppedModel(segments=1)

    def load() -> SteppedModel:
        attempts.append(1)
        if len(attempts) == 1:
            raise MemoryError("no room for a second model")
        return model

    lane = FileLane(load)
    try:
        with pytest.raises(EngineFailure, match="could not load the file lane's model: no room"):
            await transcribe_file(lane, FileRequest(silence(1.0)), 16000)
        transcript = await transcribe_file(lane, FileRequest(silence(1.0)), 16000)
        assert [s.text async for s in transcript.segments] == [" part 0"] and len(attempts) == 2
    finally:
        lane.close()


class TwoFilesModel:
    """Each `transcribe` call is a new file (a, b, ...) whose windows record themselves in `order`."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.files = 0

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[Iterator[FakeSegment], FakeInfo]:
        name = "ab"[self.files]
        self.files += 1
        return self._generate(name), FakeInfo()

    def _generate(self, name: str) -> Iterator[FakeSegment]:
        for i in range(3):
            self.order.append(f"{name}-{i}")
            yield FakeSegment(i, float(i), i + 1.0, f" {name}{i}")


async def test_two_files_take_turns_window_by_window() -> None:
    model = TwoFilesModel()
    lane = FileLane(lambda: model)
    try:
        first = await transcribe_file(lane, FileRequest(silence(1.0)), 16000)
        second = await transcribe_file(lane, FileRequest(silence(1.0)), 16000)

        async def texts(segments: Any) -> list[str]:
            return [s.text async for s in segments]

        got = await asyncio.gather(texts(first.segments), texts(second.segments))
        assert got == [[" a0", " a1", " a2"], [" b0", " b1", " b2"]]
        # FIFO, one window per step: the second upload does not wait for the whole first one.
        assert model.order == ["a-0", "b-0", "a-1", "b-1", "a-2", "b-2"]
    finally:
        lane.close()


async def test_closing_the_segments_stops_the_decoding() -> None:
    model = SteppedModel(segments=50)
    lane = lane_of(model)
    try:
        transcript = await transcribe_file(lane, FileRequest(silence(1.0), prompt="Hi."), 16000)
        segments = transcript.segments
        got = [await anext(segments), await anext(segments)]
        await segments.aclose()  # type: ignore[attr-defined]
        assert model.closed.is_set()
        await lane.submit(lambda model: None)  # anything still queued has run by now
        assert model.order == ["file-0", "file-1"] and [s.id for s in got] == [0, 1]
        assert model.options["initial_prompt"] == "Hi." and model.options["beam_size"] == 5
        assert model.options["condition_on_previous_text"] is True and "temperature" not in model.options
    finally:
        lane.close()


async def test_closing_during_a_window_closes_the_generator_after_it() -> None:
    model = SteppedModel(segments=50, hold=1)
    lane = lane_of(model)
    try:
        transcript = await transcribe_file(lane, FileRequest(silence(1.0), temperature=0.4), 16000)
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
        await lane.submit(lambda model: None)
        assert model.order == ["file-0", "file-1"]
        assert model.options["temperature"] == 0.4
    finally:
        model.release.set()
        lane.close()


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
    assert engine.decoder is not None and engine.file_lane is not None
    assert engine.file_lane.model is not None and engine.file_lane.model is not engine.decoder.model
    if sys.platform.startswith("linux"):
        # The lane's thread and the threads CTranslate2 started for its model run at the lane's nice.
        here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert len(_threads_at_nice(min(19, here + engine.settings.file_nice))) >= 2
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
        assert segment.words and all(
            segment.start - 0.5 <= w.start <= w.end <= segment.end + 0.5 for w in segment.words
        )
    assert normalize(" ".join(w.word for s in segments for w in s.words)) == normalize(text)


def _threads_at_nice(nice: int) -> list[str]:
    tasks = os.listdir("/proc/self/task")
    stats = [Path(f"/proc/self/task/{t}/stat").read_text() for t in tasks]
    return [t for t, stat in zip(tasks, stats, strict=True) if int(stat.rsplit(")", 1)[1].split()[16]) == nice]
