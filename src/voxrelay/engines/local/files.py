"""Whole-file transcription on the local engine: faster-whisper's own `transcribe`, one window per job.

A file is decoded the way whole-file faster-whisper decodes it (30 s windows, beam 5,
conditioning on the previous text, the temperature fallback), so its text matches what
`WhisperModel.transcribe` gives for the same audio. The work runs on the engine's shared
`InferenceScheduler` at priority `FILE`, below every live session's finals and interims,
and in small steps: `transcribe()` itself (features, language) is one job, and each
`next()` of its segment generator (one 30 s window) is another. A live final submitted
while a file decodes waits for the window in hand at most, never for the whole file.

Closing the segment iterator (a client that went away) stops the work: no further step is
submitted, and the generator is closed on the thread that owns it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import numpy as np

from voxrelay.engines.base import EngineFailure, Word
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript
from voxrelay.engines.local.scheduler import FILE, FINAL, InferenceScheduler

__all__ = ["transcribe_file"]

_BEAM_SIZE = 5  # faster-whisper's and openai-whisper's whole-file default
_END = object()  # the generator is exhausted


async def transcribe_file(
    model: Any, scheduler: InferenceScheduler, request: FileRequest, sample_rate: int
) -> FileTranscript:
    """Start decoding `request` (float32 PCM at `sample_rate`) with faster-whisper `model` on `scheduler`."""
    if not isinstance(request.audio, np.ndarray):
        raise EngineFailure("the local engine takes decoded PCM; the gateway decodes the file first", code="bad_audio")
    audio = request.audio
    options: dict[str, Any] = {
        "language": request.language,
        "beam_size": _BEAM_SIZE,
        "condition_on_previous_text": True,
        "initial_prompt": request.prompt or None,
        "word_timestamps": request.word_timings,
        "vad_filter": False,
    }
    # OpenAI's rule: temperature 0 (or none) = start greedy and raise it when a window fails
    # Whisper's checks (faster-whisper's default fallback); above 0 = sample at exactly that.
    if request.temperature:
        options["temperature"] = request.temperature
    start: Callable[[], tuple[Generator[Any, None, None], Any]] = functools.partial(model.transcribe, audio, **options)
    (generator, info), _timing = await scheduler.submit(start, priority=FILE)
    return FileTranscript(
        language=str(info.language), duration=len(audio) / sample_rate, segments=_segments(generator, scheduler)
    )


async def _segments(generator: Generator[Any, None, None], scheduler: InferenceScheduler) -> AsyncIterator[FileSegment]:
    lock = threading.Lock()  # held while the generator runs, so it is never closed mid-step
    stopped = False

    def step() -> Any:
        with lock:
            return _END if stopped else next(generator, _END)

    def close() -> None:
        with lock:
            generator.close()

    try:
        while True:
            segment, _timing = await scheduler.submit(step, priority=FILE)
            if segment is _END:
                return
            yield _file_segment(segment)
    finally:
        stopped = True
        if lock.acquire(blocking=False):
            try:
                generator.close()
            finally:
                lock.release()
        else:
            # A step is running on the worker: close after it, on that side (cheap, so as a final's priority).
            scheduler.submit(close, priority=FINAL).add_done_callback(_ignore)


def _ignore(future: Any) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so asyncio does not log it; nothing is left to clean up


def _file_segment(segment: Any) -> FileSegment:
    words = tuple(
        Word(_bare(w.word), float(w.start), float(w.end), float(w.probability), w.word.strip())
        for w in segment.words or ()
    )
    return FileSegment(
        id=int(segment.id),
        start=float(segment.start),
        end=float(segment.end),
        text=str(segment.text),
        words=words,
        tokens=tuple(int(t) for t in segment.tokens),
        temperature=float(segment.temperature or 0.0),
        avg_logprob=float(segment.avg_logprob),
        compression_ratio=float(segment.compression_ratio),
        no_speech_prob=float(segment.no_speech_prob),
    )


def _bare(spoken: str) -> str:
    return "".join(c for c in spoken.strip().lower() if c.isalnum() or c in "'-")
