"""Abuse limits that need a clock: byte rate, idle time, handshake rate. Pure: the caller passes `now`.

`server.py` owns the clock and the sockets; it asks these objects after each frame
(`SessionGuard.on_audio`), on a timer (`SessionGuard.idle_for`), and before each
upgrade (`HandshakeLimiter.check`), and turns a refusal into an error message and
close code (1008), or an HTTP 429 with Retry-After.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["CONTAINER_BYTES_PER_S", "HandshakeLimiter", "SessionGuard"]

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
