"""A session's deadline and idle timeout as timers: when each breaks, re-arming, and what stops them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from voxrelay.gateway.session_timers import SessionTimers
from voxrelay.protocol.codec import Codec
from voxrelay.security.limits import Breach, FrameLimits, SessionGuard, SessionLimiter


class _Handle:
    def __init__(self, at: float, callback: Callable[[], None]) -> None:
        self.at, self.callback, self.cancelled = at, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class _Loop:
    """The two loop methods the timers use, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.handles: list[_Handle] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle(self.now + delay, callback)
        self.handles.append(handle)
        return handle

    def fire_next(self) -> _Handle:
        """Move the clock to the earliest live timer and run it."""
        handle = min((h for h in self.handles if not h.cancelled), key=lambda h: h.at)
        self.handles.remove(handle)
        self.now = handle.at
        handle.callback()
        return handle


class _Codec:
    closed = False
    accepting_input = True


def _timers(idle_timeout_s: float) -> tuple[_Loop, SessionLimiter, _Codec, SessionTimers, list[Breach]]:
    loop, codec, breaches = _Loop(), _Codec(), []
    limiter = SessionLimiter(FrameLimits(), SessionGuard(0.0, idle_timeout_s=idle_timeout_s), rate_limited=False,
                             max_duration_s=100.0)
    timers = SessionTimers(cast(asyncio.AbstractEventLoop, loop), limiter, cast(Codec, codec), breaches.append)
    return loop, limiter, codec, timers, breaches


def test_the_idle_timer_is_re_armed_after_frames_and_breaks_after_a_silent_window() -> None:
    loop, limiter, _, timers, breaches = _timers(idle_timeout_s=5.0)
    timers.start(100.0)
    loop.now = 3.0
    limiter.on_frame(binary=False, nbytes=10, now=3.0)  # a frame: the window now ends at 8
    assert loop.fire_next().at == 5.0 and not breaches
    assert loop.fire_next().at == 8.0
    assert [b.kind for b in breaches] == ["idle"]
    assert [h for h in loop.handles if not h.cancelled and h.callback != timers._check_idle]  # the deadline


def test_no_idle_breach_while_the_engine_flushes_nor_after_the_close() -> None:
    loop, _, codec, timers, breaches = _timers(idle_timeout_s=5.0)
    timers.start(100.0)
    codec.accepting_input = False  # stopped: the finals are on their way
    loop.fire_next()
    assert not breaches
    codec.closed = True
    loop.fire_next()
    assert not breaches and all(h.callback != timers._check_idle for h in loop.handles)  # not re-armed


def test_the_deadline_breaks_once_and_cancel_stops_both() -> None:
    loop, _, _, timers, breaches = _timers(idle_timeout_s=0.0)  # 0: no idle timer at all
    timers.start(100.0)
    assert len(loop.handles) == 1
    loop.fire_next()
    assert [b.kind for b in breaches] == ["duration"]
    _, _, _, other, _ = _timers(idle_timeout_s=5.0)
    other_loop: Any = other._loop
    other.start(100.0)
    other.cancel()
    assert all(h.cancelled for h in other_loop.handles)
