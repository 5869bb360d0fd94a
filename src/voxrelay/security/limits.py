"""Every per-session limit, decided once for every endpoint. Pure: the caller passes `now`.

The connection runner (`voxrelay.gateway.connection`) owns the clock and the socket.
It asks a `SessionLimiter` about each frame (`on_frame`: size first, then byte rate),
on a timer (`idle_breach`) and at the deadline (`duration_breach`); a `Breach` says
which limit and why. Each endpoint's codec turns a breach into its wire form
(`/stt-stream`: error `limit_exceeded` + close 1008/1009; `/v1/listen`: Deepgram's
Error + close). `HandshakeLimiter.check` runs before each upgrade (HTTP 429).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Breach",
    "CONTAINER_BYTES_PER_S",
    "FrameLimits",
    "HandshakeLimiter",
    "SessionGuard",
    "SessionLimiter",
    "ws_max_size",
]

# Compressed audio has no fixed byte rate: assume MediaRecorder's default ceiling (128 kbit/s).
CONTAINER_BYTES_PER_S = 16_000


class SessionGuard:
    """One session's byte-rate budget and idle clock.

    The budget after `t` seconds of streaming is `rate * (burst_s + factor * t)` bytes,
    `rate` being the declared format's byte rate: a client may send a burst of
    `burst_s` seconds (a reconnect flushing its buffer) and then at most `factor`x real time.

    Args:
        now: the session's start (the caller's monotonic clock).
        factor: at most this many times real time; 0 = no byte-rate limit.
        burst_s: seconds of audio accepted at once on top of the rate.
        idle_timeout_s: a session with no frame for this long is closed; 0 = never.
    """

    def __init__(self, now: float, factor: float = 2.0, burst_s: float = 5.0, idle_timeout_s: float = 0.0) -> None:
        self.factor = factor
        self.burst_s = burst_s
        self.idle_timeout_s = idle_timeout_s
        self.last_frame = now
        self._start: float | None = None
        self._bytes_per_s: int | None = None
        self._bytes = 0

    def declare(self, bytes_per_s: int | None) -> None:
        """The configured audio format's byte rate (None = a compressed container)."""
        self._bytes_per_s = bytes_per_s or CONTAINER_BYTES_PER_S

    def on_frame(self, now: float) -> None:
        """Any frame from the client (audio or text) resets the idle clock."""
        self.last_frame = now

    def on_audio(self, nbytes: int, now: float) -> str | None:
        """Count an audio frame; returns why it is refused, or None."""
        self.last_frame = now
        if self._start is None:
            self._start = now
        self._bytes += nbytes
        if self.factor <= 0:
            return None
        rate = self._bytes_per_s or 32_000  # undeclared: the protocol default, 16 kHz mono linear16
        budget = rate * (self.burst_s + self.factor * (now - self._start))
        if self._bytes > budget:
            return (
                f"audio is arriving faster than {self.factor:g}x real time for its format "
                f"({rate} bytes/s); send it at the pace it is recorded"
            )
        return None

    def idle_for(self, now: float) -> float:
        return now - self.last_frame

    def idle_expired(self, now: float) -> bool:
        return self.idle_timeout_s > 0 and self.idle_for(now) >= self.idle_timeout_s


BreachKind = Literal["frame_size", "byte_rate", "idle", "duration"]


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit a session went past: `close_code` is 1009 for a frame too large, else 1008."""

    kind: BreachKind
    message: str

    @property
    def close_code(self) -> int:
        return 1009 if self.kind == "frame_size" else 1008


@dataclass(frozen=True, slots=True)
class FrameLimits:
    """The largest frames a session takes (bytes)."""

    max_text_frame: int = 16 * 1024
    max_audio_frame: int = 64 * 1024


def ws_max_size(limits: FrameLimits) -> int:
    """The WebSocket server's message-size ceiling: a frame past it is refused (1009) while it
    is still being read, not buffered whole. It sits above the session limits so that a frame a
    little too large still gets the endpoint's own error message with its 1009."""
    return max(limits.max_audio_frame, limits.max_text_frame) * 4


class SessionLimiter:
    """One session's limits, in the order they are checked: frame size, byte rate, idle, duration.

    Call `on_frame` for each client frame (before the session sees it), `idle_breach` on a
    timer, `duration_breach` when the deadline fires. `declare` the audio byte rate once known.

    Args:
        frames: the frame-size limits (always on, whatever the auth).
        guard: the byte-rate budget and idle clock.
        rate_limited: whether the byte rate applies (auth on and no `?batch=true` by a key holder).
        max_duration_s: the longest a session may run.
    """

    def __init__(self, frames: FrameLimits, guard: SessionGuard, *, rate_limited: bool, max_duration_s: float) -> None:
        self.frames = frames
        self.guard = guard
        self.rate_limited = rate_limited
        self.max_duration_s = max_duration_s

    def declare(self, bytes_per_s: int | None) -> None:
        self.guard.declare(bytes_per_s)

    def on_frame(self, *, binary: bool, nbytes: int, now: float) -> Breach | None:
        """Check one client frame: its size first (always), then the byte rate (audio, when limited)."""
        if binary and nbytes > self.frames.max_audio_frame:
            return Breach("frame_size", f"audio frame larger than {self.frames.max_audio_frame} bytes")
        if not binary and nbytes > self.frames.max_text_frame:
            return Breach("frame_size", f"text frame larger than {self.frames.max_text_frame} bytes")
        if not binary:
            self.guard.on_frame(now)
            return None
        reason = self.guard.on_audio(nbytes, now)
        if reason is not None and self.rate_limited:
            return Breach("byte_rate", reason)
        return None

    def idle_breach(self, now: float) -> Breach | None:
        """A breach once no frame came for the idle timeout (0 = never)."""
        if not self.guard.idle_expired(now):
            return None
        limit = self.guard.idle_timeout_s
        return Breach("idle", f"no audio or message for {limit:g} s; the session was closed")

    def idle_wait(self, now: float) -> float:
        """Seconds until the idle timeout could next expire."""
        return max(0.05, self.guard.idle_timeout_s - self.guard.idle_for(now))

    def duration_breach(self) -> Breach:
        return Breach("duration", f"the session reached its maximum duration of {self.max_duration_s:g} s")


class HandshakeLimiter:
    """Per-client-address token buckets for handshakes and token mints.

    Args:
        per_minute: sustained handshakes per minute per address; 0 = unlimited.
        burst: handshakes allowed at once.
        max_addresses: buckets kept (least recently used are forgotten first).
    """

    def __init__(self, per_minute: float, burst: int = 20, max_addresses: int = 10_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # addr -> (tokens, at)

    def check(self, address: str, now: float) -> float | None:
        """Take one handshake for `address`; returns None if allowed, else seconds to wait (Retry-After)."""
        if self.rate <= 0:
            return None
        tokens, at = self._buckets.pop(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        refused = tokens < 1.0
        if not refused:
            tokens -= 1.0
        self._buckets[address] = (tokens, now)
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return (1.0 - tokens) / self.rate if refused else None
