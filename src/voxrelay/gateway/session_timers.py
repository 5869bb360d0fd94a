"""One session's two clocks, its maximum duration and its idle timeout, as timers on the loop.

Each connection used to run a task that slept until the idle window could end; a thousand
sessions then meant a thousand tasks to create and tear down (a connect storm pays each).
A timer handle is all either clock needs: the deadline fires once; the idle timer fires
when the window could first end and, if frames came meanwhile, is re-armed for the next
such moment (`SessionLimiter.idle_wait`), so no work is done per frame.

    timers = SessionTimers(loop, limiter, codec, on_breach)
    timers.start(max_duration_s)   # after the upgrade
    timers.cancel()                # when the connection ends
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from voxrelay.protocol.codec import Codec
from voxrelay.security.limits import Breach, SessionLimiter

__all__ = ["SessionTimers"]


class SessionTimers:
    """The deadline and the idle timeout of one session; `on_breach` is called with the limit reached.

    The idle timeout breaks only while the codec still accepts input (not while the engine
    flushes after a stop), and never after the codec closed.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limiter: SessionLimiter,
        codec: Codec,
        on_breach: Callable[[Breach], None],
    ) -> None:
        self._loop = loop
        self._limiter = limiter
        self._codec = codec
        self._on_breach = on_breach
        self._deadline: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None

    def start(self, max_duration_s: float) -> None:
        self._deadline = self._loop.call_later(max_duration_s, self._duration_reached)
        idle_timeout_s = self._limiter.guard.idle_timeout_s
        if idle_timeout_s > 0:
            self._idle = self._loop.call_later(idle_timeout_s, self._check_idle)

    def cancel(self) -> None:
        for handle in (self._deadline, self._idle):
            if handle is not None:
                handle.cancel()

    def _duration_reached(self) -> None:
        self._on_breach(self._limiter.duration_breach())

    def _check_idle(self) -> None:
        if self._codec.closed:
            return
        now = self._loop.time()
        breach = self._limiter.idle_breach(now)
        if breach is not None and self._codec.accepting_input:
            self._on_breach(breach)
            return
        self._idle = self._loop.call_later(self._limiter.idle_wait(now), self._check_idle)
