"""One inference scheduler shared by every local-engine session.

Sessions submit decode jobs; worker threads (`decode_workers`, one per usable core by
default) each run one at a time, finals before interims, finals oldest first.
Uploaded files are not decoded here but on the engine's file lane (`local.file_lane`),
so a live job never waits behind a file window. A session has at most one interim job
waiting: a newer one replaces it, so a busy machine decodes each session's freshest
audio instead of a backlog, and a session that stops or finalizes withdraws it
(`cancel`), so the worker never starts an interim whose result the final replaces.
Interims are served by need: the session whose last interim ran longest ago goes
first (one that never had one, first of all), so under load the sessions that got an
interim recently are the ones that wait. A worker that takes an interim submitted with a
`batch` item also takes up to `max_batch - 1` other waiting interims of the same group (the
closest in size) and runs them all in one `batch_runner` call: a batched token loop costs
little more than one. Finals always run alone. Results come back as asyncio futures, so no
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
from typing import Any, Protocol

from voxrelay.tasks import cancel_future, hand_back, settle_exception, settle_result

__all__ = ["FINAL", "INTERIM", "Batchable", "InferenceScheduler", "JobTiming"]

FINAL = 0
INTERIM = 1


class Batchable(Protocol):
    """What an interim job carries to be run in a batch: jobs of one `group` may share a run; None: never."""

    @property
    def group(self) -> Hashable | None: ...

    @property
    def size(self) -> float: ...


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
    batch: Batchable | None = field(compare=False, default=None)


class InferenceScheduler:
    """A priority queue of blocking jobs served by `workers` threads."""

    def __init__(
        self,
        workers: int = 1,
        on_timing: Callable[[int, JobTiming], None] | None = None,
        *,
        batch_runner: Callable[[list[Any]], list[Any]] | None = None,
        max_batch: int = 1,
    ) -> None:
        """`batch_runner` takes the `batch` items of up to `max_batch` interims and returns their results in order."""
        self._batch_runner = batch_runner
        self._max_batch = max_batch if batch_runner is not None else 1
        self._heap: list[_Job] = []
        self._waiting_by_key: dict[Hashable, _Job] = {}
        self._started_at: dict[Hashable, int] = {}  # a key's last interim: its place in `_starts`
        self._starts = itertools.count()
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._on_timing = on_timing
        self.busy = 0
        self._threads = [
            threading.Thread(target=self._serve, name=f"inference-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, fn: Callable[[], Any], *, priority: int, key: Hashable | None = None, batch: Batchable | None = None
    ) -> asyncio.Future[tuple[Any, JobTiming]]:
        """Queue `fn` (blocking) and return a future of `(result, timing)`.

        An interim with a `batch` item may instead run in a batch (`batch_runner`), whose result for
        that item is the future's.

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
            job.batch = batch if priority == INTERIM else None
            if self._closed:
                raise RuntimeError("the inference scheduler is closed")
            if key is not None:
                previous = self._waiting_by_key.pop(key, None)
                if previous is not None:
                    previous.cancelled = True
                    previous.future.cancel()
                self._waiting_by_key[key] = job
            heapq.heappush(self._heap, job)
            self._cond.notify()
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
            return sum(not job.cancelled for job in self._heap)

    def close(self) -> None:
        """Stop the workers after the job in hand; waiting jobs are cancelled."""
        with self._cond:
            self._closed = True
            for job in self._heap:
                hand_back(job.loop, cancel_future, job.future)
            self._heap.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = heapq.heappop(self._heap)
                if job.key is not None and self._waiting_by_key.get(job.key) is job:
                    del self._waiting_by_key[job.key]
                # Also skip a job nobody waits for any more (its awaiting task was cancelled: a stream
                # aborted, an upload's client gone). Reading the future's state from this thread can race
                # a cancel in progress; the worst case is running the job, as before.
                if job.cancelled or job.future.cancelled():
                    continue
                jobs = [job, *self._batch_mates(job)]
                for taken in jobs:
                    if taken.priority == INTERIM and taken.key is not None:
                        self._started_at[taken.key] = next(self._starts)
                self.busy += 1
            started = time.perf_counter()
            try:
                if len(jobs) == 1:
                    results = [job.fn()]
                else:
                    assert self._batch_runner is not None
                    results = self._batch_runner([taken.batch for taken in jobs])
            except BaseException as exc:  # handed to the awaiting sessions, never lost
                for taken in jobs:
                    hand_back(taken.loop, settle_exception, taken.future, exc)
            else:
                ran = time.perf_counter() - started
                for taken, result in zip(jobs, results, strict=True):
                    timing = JobTiming(started - taken.submitted, ran)
                    if self._on_timing is not None:
                        self._on_timing(taken.priority, timing)
                    hand_back(taken.loop, settle_result, taken.future, (result, timing))
            finally:
                with self._cond:
                    self.busy -= 1

    def _batch_mates(self, job: _Job) -> list[_Job]:
        """Waiting interims to run with `job`: of its group, the closest in size (called with the lock held)."""
        if self._max_batch < 2 or job.batch is None or job.batch.group is None:
            return []
        group, size = job.batch.group, job.batch.size
        mates = [
            waiting
            for waiting in self._heap
            if waiting.batch is not None
            and waiting.batch.group == group
            and not waiting.cancelled
            and not waiting.future.cancelled()
        ]
        mates.sort(key=lambda mate: (abs(mate.batch.size - size) if mate.batch is not None else 0.0, mate))
        mates = mates[: self._max_batch - 1]
        if mates:
            taken = {id(mate) for mate in mates}
            self._heap = [waiting for waiting in self._heap if id(waiting) not in taken]
            heapq.heapify(self._heap)
            for mate in mates:
                if mate.key is not None and self._waiting_by_key.get(mate.key) is mate:
                    del self._waiting_by_key[mate.key]
        return mates
