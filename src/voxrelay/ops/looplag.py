"""Event-loop lag: how late the loop runs a timer, as a histogram and recent percentiles.

A coroutine that blocks the loop (a CPU-bound call, a blocking read) delays every
other session's I/O by as long as it runs; nothing else in the process shows it.
`LoopLagProbe` sleeps `interval` seconds in a loop and records how much later than
asked it woke up. On an idle loop that is the timer granularity (epoll waits whole
milliseconds, so up to ~1 ms); anything above is time the loop spent on other work
it could not interleave.

Call order: `start()` from inside the running loop (e.g. the app's lifespan), read
`percentiles()` or the histogram at any time, `await stop()` before the loop closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import numpy as np
from prometheus_client import Histogram

__all__ = ["LAG_BUCKETS", "LoopLagProbe"]

# Fine below 10 ms (where a healthy loop lives) and coarse above, up to a stalled loop.
LAG_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
)


class LoopLagProbe:
    """A task that measures the lag of the loop it runs on.

    Args:
        histogram: where every lag is observed (e.g. `voxrelay_event_loop_lag_seconds`), or None.
        interval: seconds between wake-ups; each wake-up is one sample.
        window: how many recent samples `percentiles()` looks at (1200 at 50 ms: the last minute).
    """

    def __init__(self, histogram: Histogram | None = None, *, interval: float = 0.05, window: int = 1200) -> None:
        self.interval = interval
        self._histogram = histogram
        self._recent: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None

    # Public methods.

    def start(self) -> None:
        """Start sampling on the running loop (must be called from it); a second call does nothing."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="loop-lag-probe")

    async def stop(self) -> None:
        """Stop sampling; the samples taken stay readable."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
        return self._task is not None and not self._task.done()

    @property
    def samples(self) -> list[float]:
        """The recent lags in seconds, oldest first."""
        return list(self._recent)

    def percentiles(self) -> dict[str, float | None]:
        """p50, p99 and max of the recent lags in seconds (None before the first sample)."""
        if not self._recent:
            return {"p50": None, "p99": None, "max": None}
        values = np.fromiter(self._recent, dtype=np.float64)
        return {
            "p50": float(np.percentile(values, 50)),
            "p99": float(np.percentile(values, 99)),
            "max": float(values.max()),
        }

    # The probe's task.

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval
            await asyncio.sleep(self.interval)
            # asyncio may run a timer up to its clock resolution early: that is no lag.
            self._record(max(0.0, loop.time() - due))

    def _record(self, lag: float) -> None:
        self._recent.append(lag)
        if self._histogram is not None:
            self._histogram.observe(lag)
