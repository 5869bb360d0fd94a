"""What the connection runner needs from an endpoint's sans-I/O session: the `Codec` protocol.

Each endpoint's session (`stt_stream.SttStreamCodec` around the `/stt-stream` session,
`deepgram_live.ListenSession` for `/v1/listen`) implements it. The runner
(`voxrelay.gateway.connection`) calls the `receive_*`, `engine_*`, `fail`, `limit_exceeded`,
`audio_error`, `idle_timeout`, `drain_notice`, `drain` and `client_gone` methods as things happen, and
after each call takes `actions()` and carries them out in order. The decisions (which
limit, which refusal, when to drain) are the runner's and admission's; a codec only says
how its wire format expresses them.
"""

from __future__ import annotations

from typing import Protocol

from voxrelay.protocol.actions import Action
from voxrelay.protocol.events import EngineEvent

__all__ = ["Codec"]


class Codec(Protocol):
    """One connection's session as the runner drives it."""

    @property
    def closed(self) -> bool:
        """Nothing more is read; the close is queued (or the client is gone)."""

    @property
    def accepting_input(self) -> bool:
        """The idle timeout applies (the client may still send audio or messages)."""

    @property
    def audio_bytes(self) -> int:
        """Audio bytes received so far (for the log)."""

    def receive_text(self, text: str) -> bytes | None:
        """A text frame from the client. A protocol that carries audio in text frames returns that
        audio instead of taking it: the runner checks it against the audio limits, then calls
        `receive_audio` with it. Others return None."""

    def receive_audio(self, data: bytes) -> None:
        """A binary frame from the client."""

    def engine_opened(self) -> None:
        """The engine stream from `OpenEngine` is open."""

    def engine_event(self, event: EngineEvent) -> None:
        """An event from the engine stream."""

    def engine_flushed(self, audio_seconds: float | None) -> None:
        """The engine's events ended; `audio_seconds` is what it was given, if known."""

    def fail(self, code: str, message: str) -> None:
        """A fatal problem found by the runner (`engine_error`, `engine_unavailable`, `internal`)."""

    def audio_error(self, message: str) -> None:
        """The client's audio cannot be decoded: fatal."""

    def limit_exceeded(self, message: str, close_code: int) -> None:
        """A limit was passed (frame size 1009, byte rate or duration 1008): fatal."""

    def idle_timeout(self, message: str) -> None:
        """No frame from the client for the idle timeout: fatal."""

    def drain_notice(self) -> None:
        """The server began draining: tell the client now, if the protocol has a way to."""

    def drain(self) -> None:
        """End the session gracefully for a drain, every final still delivered (called once the
        frames the client already sent are read: `ops.drain.InputCut`)."""

    def quota_warning(self, message: str) -> None:
        """The key has used 90 % of its monthly quota: tell the client, if the protocol has a way to."""

    def quota_exceeded(self, message: str) -> None:
        """The key reached its quota: end the session like a stop, its finals still delivered, then an
        error `quota_exceeded` and close 1008."""

    def client_gone(self) -> None:
        """The socket closed under us; nothing more is sent."""

    def actions(self) -> list[Action]:
        """Actions to run now, oldest first; the list is handed over and cleared."""
