"""What flows between a session and an engine: the stream configuration and the events an engine yields.

These are plain frozen dataclasses with no I/O, so the sans-I/O session and the protocol
codecs can use them without importing any engine; `voxrelay.engines.base` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EngineError",
    "EngineEvent",
    "EngineWarning",
    "FileSegment",
    "FinalResult",
    "InterimResult",
    "SpeechStarted",
    "StreamConfig",
    "UtteranceEnd",
    "Word",
]


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Everything an engine needs to open one stream.

    `encoding`, `sample_rate` and `channels` describe the audio `send_audio` will get:
    for engines with `wants_raw_audio`, the client's bytes as they came (linear16 or a
    webm/ogg container); otherwise float32 mono PCM at the engine's `sample_rate`.
    """

    encoding: Literal["linear16", "webm", "ogg", "opus", "ogg-opus", "mulaw", "alaw", "pcm_f32"] = "pcm_f32"
    sample_rate: int = 16000
    channels: int = 1
    model: str | None = None
    language: str | None = None
    interim_results: bool = True
    endpointing_ms: int = 300
    utterance_end_ms: int | None = None
    vad_events: bool = True
    punctuate: bool = True
    smart_format: bool = False
    keyterms: tuple[str, ...] = ()
    word_timings: bool = False  # per-word start/end/confidence in results (costs an alignment pass locally)
    dictation: bool = False  # spoken punctuation commands ("comma") become marks; only with `punctuate`


# Events an engine yields. Times are seconds from the start of the stream's audio.


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float
    end: float
    confidence: float
    punctuated_word: str


@dataclass(frozen=True, slots=True)
class InterimResult:
    transcript: str
    start: float
    end: float
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class FinalResult:
    """Committed text; later finals never repeat or overlap it."""

    transcript: str
    start: float
    end: float
    speech_final: bool
    from_finalize: bool = False
    confidence: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    timestamp: float


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    last_word_end: float


@dataclass(frozen=True, slots=True)
class EngineError:
    """A failure in the engine; `fatal` ends the stream (no more events follow)."""

    code: Literal["engine_unavailable", "engine_error", "unsupported_audio", "bad_request", "limit_exceeded"]
    message: str
    fatal: bool = True


@dataclass(frozen=True, slots=True)
class EngineWarning:
    """Something the client should know that does not end the stream (e.g. `reconnecting` upstream)."""

    code: str
    message: str


EngineEvent = InterimResult | FinalResult | SpeechStarted | UtteranceEnd | EngineError | EngineWarning


@dataclass(frozen=True, slots=True)
class FileSegment:
    """One decoded segment of a whole file (`engines.files`), times in seconds from the start of the file.

    The decoder statistics are Whisper's (OpenAI's `verbose_json` reports them); engines that
    have none leave the defaults. It lives here, beside the stream events, so the file
    endpoints' codecs can render it without importing an engine.
    """

    id: int
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    tokens: tuple[int, ...] = ()
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
