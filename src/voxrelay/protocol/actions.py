"""The one action vocabulary: what a sans-I/O session asks the connection runner to do.

Every endpoint's session returns these from `actions()`; the runner
(`voxrelay.gateway.connection`) carries them out in order, on one task: send a text
frame, open/feed/finalize/close the engine stream, close the socket. A session of
`/stt-stream` sends typed messages (`session.SendMessage`), which its codec encodes
into `SendText`; everything else is shared as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from voxrelay.protocol.messages import AudioFormat, StreamOptions

__all__ = [
    "Action",
    "CloseEngine",
    "CloseSocket",
    "EngineAction",
    "FeedAudio",
    "FinalizeEngine",
    "OpenEngine",
    "SendKind",
    "SendText",
]

# What a sent frame is, for the latency and error metrics.
SendKind = Literal["interim", "final", "error", "other"]


@dataclass(frozen=True, slots=True)
class SendText:
    """Send one text frame. `kind`/`code` say what it is (metrics), not how it is written."""

    text: str
    kind: SendKind = "other"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class OpenEngine:
    """Open the engine stream for this format and options, then call the session's `engine_opened()`."""

    audio_format: AudioFormat
    options: StreamOptions
    word_timings: bool = False


@dataclass(frozen=True, slots=True)
class FeedAudio:
    data: bytes


@dataclass(frozen=True, slots=True)
class FinalizeEngine:
    """Everything fed so far comes back as final.

    `ends_turn`: the client waits on this finalize's answer to end its turn (OpenAI Realtime's
    commit), so its final is timed like the final after a stop.
    """

    ends_turn: bool = False


@dataclass(frozen=True, slots=True)
class CloseEngine:
    """End of audio: the engine flushes, then the runner calls the session's `engine_flushed()`."""


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Close the socket. `error`: the error code to count when no error message preceded the close."""

    code: int
    reason: str
    error: str | None = field(default=None, compare=False)


# Everything but sending: the same for every endpoint.
EngineAction = OpenEngine | FeedAudio | FinalizeEngine | CloseEngine | CloseSocket
Action = SendText | EngineAction
