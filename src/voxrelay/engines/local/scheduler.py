"""One inference scheduler shared by every local-engine session.

Sessions submit decode jobs; worker threads (`decode_workers`, one per usable core by
default) each run one at a time, finals before interims, finals oldest first. With
`interim_workers`, interims get threads of their own and the other workers run finals
only: the engine gives those threads a decoder whose CTranslate2 threads run at a lower
CPU priority (`local.priority`), so a final that arrives while interims keep the cores
busy gets a core from the kernel at once instead of waiting for an interim to end.
Uploaded files are not decoded here but on the engine's file lane (`local.file_lane`),
so a live job never waits behind a file window. A session has at most one interim job
waiting: a newer one replaces it, so a busy machine decodes each session's freshest
audio instead of a backlog, and a session that stops or finalizes withdraws it
(`cancel`), so the worker never starts an interim whose result the final replaces.
Interims are served by need: the session whose last interim ran longest ago goes
first (one that never had one, first of all), so under load the sessions that got an
interim recently are the ones that wait. Results come back as asyncio futures, so no
decode ever runs on the event loop.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from voxrelay.tasks import cancel_future, hand_back, settle_exception, settle_result

__all__ = ["FINAL", "INTERIM", "InferenceScheduler", "JobTiming"]

FINAL = 0
INTERIM = 1


@dataclass(frozen=True, slots=True)
class JobTiming:
    """How long a job waited in the queue and how long it ran, in seconds."""

    wait: float
    run: float


@dataclass(order=True)
class _Job:
    priority: int
    need: int  # interims: when the session's last interim started (-1: never); finals: 0
    seq: int
    fn: Callable[[], Any] = field(compare=False)
    future: asyncio.Future[tuple[Any, JobTiming]] = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    key: Hashable | None = field(compare=False, default=None)
    submitted: float = field(compare=False, default=0.0)
    cancelled: bool = field(compare=False, default=False)


class InferenceScheduler:
    """Priority queues of blocking jobs: `workers` threads serve finals (and interims, unless
    `interim_workers` threads of their own serve those)."""

    def __init__(
        self,
        workers: int = 1,
        on_timing: Callable[[int, JobTiming], None] | None = None,
        *,
        interim_workers: int = 0,
    ) -> None:
        self._heaps: dict[int, list[_Job]] = {FINAL: [], INTERIM: []}
        self._waiting_by_key: dict[Hashable, _Job] = {}
        self._started_at: dict[Hashable, int] = {}  # a key's last interim: its place in `_starts`
        self._starts = itertools.count()
        # One lock for both queues; interims have a condition of their own when their own threads wait on it.
        lock = threading.RLock()
        self._cond = threading.Condition(lock)  # signals finals (and interims when the workers serve both)
        self._interim_cond = threading.Condition(lock) if interim_workers else self._cond
        self._seq = itertools.count()
        self._closed = False
        self._on_timing = on_timing
        self.busy = 0
        shared = (FINAL,) if interim_workers else (FINAL, INTERIM)
        self._threads = [
            threading.Thread(target=self._serve, args=(shared, self._cond), name=f"inference-{i}", daemon=True)
            for i in range(workers)
        ] + [
            threading.Thread(
                target=self._serve, args=((INTERIM,), self._interim_cond), name=f"interims-{i}", daemon=True
            )
            for i in range(interim_workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, fn: Callable[[], Any], *, priority: int, key: Hashable | None = None
    ) -> asyncio.Future[tuple[Any, JobTiming]]:
        """Queue `fn` (blocking) and return a future of `(result, timing)`.

        With a `key`, a job still waiting under the same key is cancelled (its future
        is cancelled) and replaced by this one; an interim's turn among interims is set
        by when the key's last interim started (longest ago first). Must be called from
        the event loop; a key that is done with should be `release`d.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[Any, JobTiming]] = loop.create_future()
        with self._cond:
            need = self._started_at.get(key, -1) if priority == INTERIM and key is not None else 0
            job = _Job(priority, need, next(self._seq), fn, future, loop, key, time.perf_counter())
            if self._closed:
                raise RuntimeError("the inference scheduler is closed")
            if key is not None:
                previous = self._waiting_by_key.pop(key, None)
                if previous is not None:
                    previous.cancelled = True
                    previous.future.cancel()
                self._waiting_by_key[key] = job
            heapq.heappush(self._heaps[priority], job)
            (self._interim_cond if priority == INTERIM else self._cond).notify()
        return future

    def cancel(self, key: Hashable) -> bool:
        """Withdraw the job waiting under `key` (its future is cancelled); False if none was waiting.

        A job already running is not stopped: a decode cannot be interrupted.
        """
        with self._cond:
            job = self._waiting_by_key.pop(key, None)
            if job is None:
                return False
            job.cancelled = True
            job.future.cancel()
            return True

    def release(self, key: Hashable) -> None:
        """`cancel(key)` and forget the key's interim history (its session is over)."""
        self.cancel(key)
        with self._cond:
            self._started_at.pop(key, None)

    @property
    def queued(self) -> int:
        with self._cond:
            return sum(not job.cancelled for heap in self._heaps.values() for job in heap)

    def close(self) -> None:
        """Stop the workers after the job in hand; waiting jobs are cancelled."""
        with self._cond:
            self._closed = True
            for heap in self._heaps.values():
                for job in heap:
                    hand_back(job.loop, cancel_future, job.future)
                heap.clear()
            self._cond.notify_all()
            self._interim_cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def _serve(self, priorities: tuple[int, ...], ready: threading.Condition) -> None:
        heaps = [self._heaps[priority] for priority in priorities]  # served in this order
        while True:
            with ready:
                while not any(heaps) and not self._closed:
                    ready.wait()
                if self._closed:
                    return
                job = heapq.heappop(next(heap for heap in heaps if heap))
                if job.key is not None and self._waiting_by_key.get(job.key) is job:
                    del self._waiting_by_key[job.key]
                # Also skip a job nobody waits for any more (its awaiting task was cancelled: a stream
                # aborted, an upload's client gone). Reading the future's state from this thread can race
                # a cancel in progress; the worst case is running the job, as before.
                if job.cancelled or job.future.cancelled():
                    continue
                if job.priority == INTERIM and job.key is not None:
                    self._started_at[job.key] = next(self._starts)
                self.busy += 1
            started = time.perf_counter()
            try:
                result = job.fn()
            except BaseException as exc:  # handed to the awaiting session, never lost
                hand_back(job.loop, settle_exception, job.future, exc)
            else:
                timing = JobTiming(started - job.submitted, time.perf_counter() - started)
                if self._on_timing is not None:
                    self._on_timing(job.priority, timing)
                hand_back(job.loop, settle_result, job.future, (result, timing))
            finally:
                with self._cond:
                    self.busy -= 1
