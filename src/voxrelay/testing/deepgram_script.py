"""What the fake Deepgram is told (`Script`, one per `model`) and what it saw (`Connection`, one per connection).

Read by the sans-I/O core (`testing.deepgram_core`) and by tests through `testing.fake_deepgram`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CONTAINER_BYTES_PER_S", "Connection", "Script"]

CONTAINER_BYTES_PER_S = 4000  # a nominal rate for compressed audio (Opus at ~32 kbit/s): times answers


@dataclass(frozen=True)
class Script:
    """How the fake answers one connection.

    Attributes:
        transcript: the text of every final; interims are growing prefixes of it.
        interim_every_s: audio seconds between interim Results (when interim_results=true); 0 = none.
        final_every_s: audio seconds per automatic final (speech_final); None = finals only on
            Finalize and CloseStream.
        reply_delay_s: every answer is held back this long (a slow upstream; the shell keeps time).
        reject_status: answer the handshake with this HTTP status instead of upgrading.
        fault: what happens once `fault_after_bytes` of audio arrived: "drop" (TCP abort, no
            close frame), "close" (close with `close_code`/`close_reason`), "malformed" (a text
            frame that is not JSON).
        idle_timeout_s: close 1011 NET-0001 after this long with neither audio nor a message.
        ignore_close_stream: never answer CloseStream (the client has to give up).
        fault_once: the fault hits only the first connection with this `model` (a reconnect
            with the same options then succeeds), so faults can be survived.
        words_from_audio: a final's words are checksums of its audio, one per 100 ms
            (`w1a2b3c4d`), so equal transcripts mean the same audio arrived, in order.
        stamp_transcripts: append ` t<time.monotonic_ns()>` to every transcript as it is made
            (benchmarks time the relay from it; CLOCK_MONOTONIC is system-wide).
        speech_started: answer a stream opened with vad_events=true with SpeechStarted at the
            start of each segment, as Deepgram does (the benchmark's upstream does not: its
            numbers were measured without, and a relay pays the same per message).
        stall_after_bytes: stop reading once this much audio arrived (TCP backpressure: the
            client's sends block, as with a hung upstream); drop the connection `stall_s` later.
        silent_finalize: never answer Finalize, as Deepgram does when it has no audio buffered
            ("You may receive a response with from_finalize").
    """

    transcript: str = "the quick brown fox jumps over the lazy dog"
    interim_every_s: float = 0.25
    final_every_s: float | None = None
    reply_delay_s: float = 0.0
    reject_status: int | None = None
    fault: Literal["drop", "close", "malformed"] | None = None
    fault_after_bytes: int = 0
    close_code: int = 1011
    close_reason: str = "NET-0000: the service did not transmit a text frame within the timeout window"
    idle_timeout_s: float | None = None
    ignore_close_stream: bool = False
    fault_once: bool = False
    words_from_audio: bool = False
    stamp_transcripts: bool = False
    speech_started: bool = True
    stall_after_bytes: int | None = None
    silent_finalize: bool = False
    stall_s: float = 3.0


@dataclass
class Connection:
    """What the fake saw on one connection (never the key itself: only whether it matched)."""

    params: dict[str, list[str]]
    authorized: bool
    script: Script
    audio_bytes: int = 0
    keepalives: int = 0
    finalizes: int = 0
    close_streams: int = 0
    messages: list[str] = field(default_factory=list)  # control message types, in order
    extensions: str | None = None  # the Sec-WebSocket-Extensions header the client offered
    closed: bool = False

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None
