"""One timer per upstream connection: KeepAlive for a silent stream, and the stalled-send check.

The stream's send loop stamps a `SendClock` around every send; the `Watchdog` reads it
about once per `keepalive_s`:

    clock = SendClock(loop.time())
    watchdog = Watchdog(sender_task, clock, keepalive_s, send_timeout_s, queue_keep_alive)
    # each send: clock.began = loop.time(); await it; clock.last = clock.began; clock.began = None
    watchdog.cancel()         # when the connection ends; `watchdog.stalled` says whether it cancelled the sender

A timeout around every send (a task and an `asyncio.wait` per audio frame) cost more than
the send itself at a thousand streams.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["SendClock", "Watchdog"]


class SendClock:
    """When the current send began (None between sends) and when the last one completed, in loop time."""

    __slots__ = ("began", "last")

    def __init__(self, now: float) -> None:
        self.began: float | None = None
        self.last = now


class Watchdog:
    """Queues KeepAlive after `keepalive_s` with nothing sent; cancels a send stuck for `send_timeout_s`.

    Args:
        sender: the connection's send task (cancelled when a send stalls; the check ends with it).
        clock: stamped by the sender around each send.
        keep_alive: called when nothing was sent for `keepalive_s` (queues a KeepAlive).
    """

    def __init__(
        self,
        sender: asyncio.Task[None],
        clock: SendClock,
        keepalive_s: float,
        send_timeout_s: float,
        keep_alive: Callable[[], None],
    ) -> None:
        self._sender = sender
        self._clock = clock
        self._keepalive_s = keepalive_s
        self._send_timeout_s = send_timeout_s
        self._keep_alive = keep_alive
        self._loop = asyncio.get_running_loop()
        self.stalled = False
        self._handle = self._loop.call_later(min(keepalive_s, send_timeout_s), self._check)

    def cancel(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        if self._sender.done():
            return
        now = self._loop.time()
        began, last = self._clock.began, self._clock.last
        if began is not None:
            if now - began >= self._send_timeout_s:
                self.stalled = True  # the upstream stopped reading (TCP backpressure)
                self._sender.cancel()
                return
            due = min(began + self._send_timeout_s, now + self._keepalive_s)
        elif now - last >= self._keepalive_s:
            self._keep_alive()
            due = now + self._keepalive_s
        else:
            due = last + self._keepalive_s
        self._handle = self._loop.call_at(due, self._check)
