"""Whole-file transcription on the local engine: faster-whisper's own `transcribe`, one window per step.

A file is decoded the way whole-file faster-whisper decodes it (30 s windows, beam 5,
conditioning on the previous text, the temperature fallback), so its text matches what
`WhisperModel.transcribe` gives for the same audio. The work runs on the engine's
`FileLane` (`local.file_lane`): its own thread and its own copy of the model, never the
live sessions' scheduler, so a live final or interim never waits for a file window.
It still runs in small steps: `transcribe()` itself (features, language) is one step, and
each `next()` of its segment generator (one 30 s window) is another, so concurrent
uploads take turns window by window.

With `dictation`, each segment goes through `protocol.dictation` (with its word timings) as it comes.
Unlike live streams, files are not primed with the command words: faster-whisper puts `hotwords` in
front of every 30 s window, and on the dictation clips that added made-up segments (". . . .",
"Good.", a sentence said twice) to 7 of 28 files.

Closing the segment iterator (a client that went away) stops the work within one window:
no further step is submitted, and the generator is closed on the lane's thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Generator
from typing import Any

import numpy as np

from voxrelay.engines.base import EngineFailure, Word
from voxrelay.engines.files import FileRequest, FileSegment, FileTranscript
from voxrelay.engines.local.file_lane import FileLane
from voxrelay.engines.local.results import dictated

__all__ = ["transcribe_file"]

_BEAM_SIZE = 5  # faster-whisper's and openai-whisper's whole-file default
_END = object()  # the generator is exhausted


async def transcribe_file(lane: FileLane, request: FileRequest, sample_rate: int) -> FileTranscript:
    """Start decoding `request` (float32 PCM at `sample_rate`) with the faster-whisper model of `lane`."""
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

    def start(model: Any) -> tuple[Generator[Any, None, None], Any]:
        return model.transcribe(audio, **options)  # type: ignore[no-any-return]

    generator, info = await lane.submit(start)
    segments = _segments(generator, lane, dictation=request.dictation)
    return FileTranscript(language=str(info.language), duration=len(audio) / sample_rate, segments=segments)


async def _segments(
    generator: Generator[Any, None, None], lane: FileLane, *, dictation: bool = False
) -> AsyncIterator[FileSegment]:
    lock = threading.Lock()  # held while the generator runs, so it is never closed mid-step
    stopped = False
    before = ""  # the text so far, for dictation: a command that begins a segment follows it

    def step(_model: Any) -> Any:
        with lock:
            return _END if stopped else next(generator, _END)

    def close(_model: Any) -> None:
        with lock:
            generator.close()

    try:
        while True:
            segment = await lane.submit(step)
            if segment is _END:
                return
            converted = _file_segment(segment)
            if dictation:
                text, words = dictated(converted.text, converted.words, final=True, before=before)
                converted, before = dataclasses.replace(converted, text=text, words=words), text or before
            yield converted
    finally:
        stopped = True
        if lock.acquire(blocking=False):
            try:
                generator.close()
            finally:
                lock.release()
        else:
            # A step is running on the lane: close after it, on that side (a closed lane has no side left).
            with contextlib.suppress(RuntimeError):
                lane.submit(close).add_done_callback(_ignore)


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
