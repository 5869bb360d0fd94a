"""Whole-file transcription: what an engine is asked for one uploaded recording, and what it returns.

Streams (`base.EngineStream`) serve live sessions; a file is different: all the audio is
there up front, so an engine can decode it the way whole-file Whisper does (full windows,
beam search, conditioning on the previous text) and return segments as they are decoded.
The OpenAI file endpoint (`POST /v1/audio/transcriptions`) and Deepgram's pre-recorded API
are the callers; both are codecs over this one contract.

Call order:
    transcript = await engine.transcribe_file(request)   # decodes nothing yet beyond what it must
    async for segment in transcript.segments: ...        # in order; `aclose()` to stop early
An engine that cannot transcribe files leaves `Capabilities.file_transcription` False and
the base `Engine.transcribe_file` raises `EngineFailure` with code "unsupported".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np

from voxrelay.protocol.events import FileSegment

__all__ = ["FileRequest", "FileSegment", "FileTranscript"]


@dataclass(frozen=True, slots=True)
class FileRequest:
    """One recording to transcribe.

    Attributes:
        audio: the uploaded bytes as they came (engines with `Capabilities.raw_audio`), or the
            decoded float32 mono PCM at the engine's `Capabilities.sample_rate` (the others).
        filename: the upload's name, a hint for engines that pass the file on (e.g. "a.mp3").
        language: ISO-639-1 code, or None to detect it (where the model can).
        prompt: text the recording continues or its vocabulary, as context for the decoder.
        word_timings: return per-word times in each segment.
        temperature: the sampling temperature asked for; None leaves it to the engine.
        dictation: spoken punctuation commands become marks (`protocol.dictation`; Deepgram does its own).
    """

    audio: bytes | np.ndarray
    filename: str | None = None
    language: str | None = None
    prompt: str | None = None
    word_timings: bool = False
    temperature: float | None = None
    dictation: bool = False


@dataclass(frozen=True, slots=True)
class FileTranscript:
    """A transcription under way: what is known before decoding, and the segments as they come."""

    language: str
    duration: float
    segments: AsyncIterator[FileSegment]
