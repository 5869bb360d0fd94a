"""limits.py: byte-rate budget, idle clock, handshake buckets. The tests pass the clock."""

from __future__ import annotations

import pytest

from voxrelay.security.limits import (
    CONTAINER_BYTES_PER_S,
    FrameLimits,
    HandshakeLimiter,
    SessionGuard,
    SessionLimiter,
    ws_max_size,
)


def test_real_time_audio_passes_and_a_flood_is_refused() -> None:
    guard = SessionGuard(now=0.0, factor=2.0, burst_s=1.0)
    guard.declare(32000)
    for i in range(100):  # 10 s at real time, 100 ms frames
        assert guard.on_audio(3200, now=i * 0.1) is None
    flood = SessionGuard(now=0.0, factor=2.0, burst_s=1.0)
    flood.declare(32000)
    refusals = [flood.on_audio(3200, now=0.0) for _ in range(20)]
    assert refusals[:10] == [None] * 10  # the burst allowance
    assert refusals[10] is not None and "2x real time" in refusals[10] and "32000 bytes/s" in refusals[10]


def test_twice_real_time_is_the_ceiling() -> None:
    guard = SessionGuard(now=0.0, factor=2.0, burst_s=0.5)
    guard.declare(32000)
    results = [guard.on_audio(6400, now=i * 0.1) for i in range(100)]  # 2x real time
    assert all(r is None for r in results)
    assert guard.on_audio(32000, now=9.95) is not None  # then 1 s more at once


def test_containers_get_a_nominal_rate_and_zero_disables() -> None:
    guard = SessionGuard(now=0.0, factor=2.0, burst_s=0.0)
    guard.declare(None)
    assert guard.on_audio(0, now=0.0) is None
    assert guard.on_audio(CONTAINER_BYTES_PER_S, now=0.6) is None
    assert guard.on_audio(CONTAINER_BYTES_PER_S, now=0.6) is not None
    free = SessionGuard(now=0.0, factor=0)
    assert free.on_audio(10**9, now=0.0) is None


def test_idle_clock() -> None:
    guard = SessionGuard(now=10.0, idle_timeout_s=5.0)
    assert not guard.idle_expired(14.9)
    guard.on_frame(14.9)
    assert not guard.idle_expired(19.8) and guard.idle_expired(20.0)
    assert not SessionGuard(now=0.0, idle_timeout_s=0).idle_expired(10**6)


def test_handshake_buckets_per_address() -> None:
    limiter = HandshakeLimiter(per_minute=60, burst=3)
    assert [limiter.check("a", 0.0) for _ in range(3)] == [None] * 3
    wait = limiter.check("a", 0.0)
    assert wait is not None and 0 < wait <= 1.0
    assert limiter.check("b", 0.0) is None  # other addresses unaffected
    assert limiter.check("a", 1.0) is None  # one token back per second
    assert HandshakeLimiter(per_minute=0).check("a", 0.0) is None


def test_handshake_buckets_are_bounded() -> None:
    limiter = HandshakeLimiter(per_minute=60, burst=1, max_addresses=100)
    for i in range(1000):
        limiter.check(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(limiter._buckets) == 100


def limiter(*, rate_limited: bool, idle_timeout_s: float = 0.0) -> SessionLimiter:
    guard = SessionGuard(now=0.0, factor=2.0, burst_s=1.0, idle_timeout_s=idle_timeout_s)
    limiter = SessionLimiter(FrameLimits(1024, 8192), guard, rate_limited=rate_limited, max_duration_s=60)
    limiter.declare(32000)
    return limiter


def test_frame_size_is_checked_first_whatever_the_auth() -> None:
    for rate_limited in (True, False):
        limits = limiter(rate_limited=rate_limited)
        breach = limits.on_frame(binary=True, nbytes=200 * 1024, now=0.0)  # also far past the byte budget
        assert breach is not None and breach.kind == "frame_size" and breach.close_code == 1009
        assert "8192" in breach.message
        text = limits.on_frame(binary=False, nbytes=1025, now=0.0)
        assert text is not None and text.close_code == 1009 and "1024" in text.message
    assert ws_max_size(FrameLimits(1024, 8192)) > 8192  # a little too large still reaches the session


def test_the_byte_rate_applies_only_when_limited() -> None:
    limited, batch = limiter(rate_limited=True), limiter(rate_limited=False)
    results = [limited.on_frame(binary=True, nbytes=8000, now=0.0) for _ in range(5)]
    assert results[:4] == [None] * 4  # the 1 s burst
    assert results[4] is not None and results[4].kind == "byte_rate" and results[4].close_code == 1008
    assert all(batch.on_frame(binary=True, nbytes=8000, now=0.0) is None for _ in range(50))


def test_idle_and_duration_breaches() -> None:
    limits = limiter(rate_limited=True, idle_timeout_s=2.0)
    assert limits.on_frame(binary=False, nbytes=10, now=1.0) is None  # a text frame resets the clock
    assert limits.idle_breach(2.9) is None and limits.idle_wait(2.9) == pytest.approx(0.1)
    idle = limits.idle_breach(3.0)
    assert idle is not None and idle.kind == "idle" and idle.close_code == 1008 and "2 s" in idle.message
    assert limiter(rate_limited=True).idle_breach(10**6) is None  # 0 = never
    duration = limits.duration_breach()
    assert duration.close_code == 1008 and "maximum duration of 60 s" in duration.message
