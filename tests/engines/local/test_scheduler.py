import asyncio
import threading
import time
from dataclasses import dataclass

import pytest

from voxrelay.engines.local.scheduler import FINAL, INTERIM, InferenceScheduler, JobTiming


async def test_finals_jump_the_queue_and_interims_coalesce() -> None:
    scheduler = InferenceScheduler(workers=1)
    gate = threading.Event()
    blocker_running = threading.Event()
    order: list[str] = []

    def job(name: str):  # type: ignore[no-untyped-def]
        def run() -> str:
            if name == "blocker":
                blocker_running.set()
                gate.wait(10)
            order.append(name)
            return name

        return run

    try:
        blocker = scheduler.submit(job("blocker"), priority=INTERIM)
        assert await asyncio.to_thread(blocker_running.wait, 10)  # the worker is busy from here on
        old_interim = scheduler.submit(job("interim-old"), priority=INTERIM, key="s1")
        new_interim = scheduler.submit(job("interim-new"), priority=INTERIM, key="s1")
        other = scheduler.submit(job("interim-s2"), priority=INTERIM, key="s2")
        queued_at = time.perf_counter()
        final = scheduler.submit(job("final"), priority=FINAL)
        assert old_interim.cancelled()  # replaced by the newer request of the same session
        held_s = time.perf_counter() - queued_at  # the final waits at least this long: the worker is held
        gate.set()
        results = await asyncio.gather(blocker, new_interim, other, final)
        assert [r[0] for r in results] == ["blocker", "interim-new", "interim-s2", "final"]
        assert order == ["blocker", "final", "interim-new", "interim-s2"]
        timing = results[3][1]
        # The final's timing: queued behind the held blocker at least `held_s`; it ran a trivial job.
        assert timing.wait >= held_s and 0 < timing.run < 1.0, (timing, held_s)
    finally:
        gate.set()
        scheduler.close()


async def test_job_exceptions_reach_the_caller() -> None:
    scheduler = InferenceScheduler()

    def boom() -> None:
        raise ValueError("decode failed")

    try:
        with pytest.raises(ValueError, match="decode failed"):
            await scheduler.submit(boom, priority=FINAL)
        # The worker survives a failing job.
        result, _ = await scheduler.submit(lambda: 42, priority=FINAL)
        assert result == 42
    finally:
        scheduler.close()


async def test_a_job_whose_future_was_cancelled_before_it_ran_is_skipped() -> None:
    scheduler = InferenceScheduler(workers=1)
    gate, blocking = threading.Event(), threading.Event()
    ran: list[str] = []

    def blocker() -> None:
        blocking.set()
        gate.wait(10)

    try:
        held = scheduler.submit(blocker, priority=FINAL)
        assert await asyncio.to_thread(blocking.wait, 10)
        abandoned = scheduler.submit(lambda: ran.append("abandoned"), priority=FINAL)
        abandoned.cancel()  # the task awaiting it was cancelled
        after = scheduler.submit(lambda: ran.append("after"), priority=FINAL)
        gate.set()
        await asyncio.gather(held, after)
        assert ran == ["after"]
    finally:
        gate.set()
        scheduler.close()


def _recorder(order: list[str], hold: threading.Event | None = None, running: threading.Event | None = None):  # type: ignore[no-untyped-def]
    def job(name: str):  # type: ignore[no-untyped-def]
        def run() -> str:
            if running is not None and hold is not None and name == "blocker":
                running.set()
                hold.wait(10)
            order.append(name)
            return name

        return run

    return job


async def test_a_withdrawn_interim_never_runs() -> None:
    scheduler = InferenceScheduler(workers=1)
    gate, running = threading.Event(), threading.Event()
    order: list[str] = []
    job = _recorder(order, gate, running)
    try:
        blocker = scheduler.submit(job("blocker"), priority=FINAL)
        assert await asyncio.to_thread(running.wait, 10)
        interim = scheduler.submit(job("interim"), priority=INTERIM, key="s1")
        assert scheduler.cancel("s1")  # a stop arrived: its final replaces the waiting interim
        assert interim.cancelled()
        assert not scheduler.cancel("s1")  # nothing waits any more
        final = scheduler.submit(job("final"), priority=FINAL)
        gate.set()
        await asyncio.gather(blocker, final)
        assert order == ["blocker", "final"]
        assert scheduler.queued == 0
    finally:
        gate.set()
        scheduler.close()


async def test_interims_go_to_the_session_served_longest_ago_first() -> None:
    scheduler = InferenceScheduler(workers=1)
    order: list[str] = []
    try:
        # s1's interim ran, then s2's: s1 got one longest ago.
        await scheduler.submit(_recorder(order)("s1-a"), priority=INTERIM, key="s1")
        await scheduler.submit(_recorder(order)("s2-a"), priority=INTERIM, key="s2")
        gate, running = threading.Event(), threading.Event()
        job = _recorder(order, gate, running)
        blocker = scheduler.submit(job("blocker"), priority=FINAL)
        assert await asyncio.to_thread(running.wait, 10)
        # Queued in the order s2, s1, s3 (new), then a final; served: final, s3 (never had one), s1, s2.
        waiting = [
            scheduler.submit(job("s2-b"), priority=INTERIM, key="s2"),
            scheduler.submit(job("s1-b"), priority=INTERIM, key="s1"),
            scheduler.submit(job("s3-a"), priority=INTERIM, key="s3"),
            scheduler.submit(job("final"), priority=FINAL),
        ]
        gate.set()
        await asyncio.gather(blocker, *waiting)
        assert order == ["s1-a", "s2-a", "blocker", "final", "s3-a", "s1-b", "s2-b"]
    finally:
        scheduler.close()


async def test_a_released_key_starts_afresh() -> None:
    scheduler = InferenceScheduler(workers=1)
    order: list[str] = []
    try:
        await scheduler.submit(_recorder(order)("old-a"), priority=INTERIM, key="old")
        await scheduler.submit(_recorder(order)("other-a"), priority=INTERIM, key="other")
        scheduler.release("old")  # its session ended; a new one under the same key counts as never served
        gate, running = threading.Event(), threading.Event()
        job = _recorder(order, gate, running)
        blocker = scheduler.submit(job("blocker"), priority=FINAL)
        assert await asyncio.to_thread(running.wait, 10)
        waiting = [
            scheduler.submit(job("other-b"), priority=INTERIM, key="other"),
            scheduler.submit(job("old-b"), priority=INTERIM, key="old"),
        ]
        gate.set()
        await asyncio.gather(blocker, *waiting)
        assert order[-2:] == ["old-b", "other-b"]
    finally:
        scheduler.close()


def test_a_job_outliving_its_event_loop_leaves_the_worker_serving() -> None:
    # A session's loop can end while a second worker still decodes for it (a test's asyncio.run, a shutdown):
    # the result has nobody to go to, and the worker must not die of it.
    scheduler = InferenceScheduler(workers=1)
    running, release, finished = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)  # type: ignore[assignment]

    def slow() -> str:
        running.set()
        release.wait(10)
        finished.set()
        return "late"

    async def submit_and_leave() -> None:
        scheduler.submit(slow, priority=INTERIM)
        assert await asyncio.to_thread(running.wait, 10)

    async def next_job() -> str:
        result, _timing = await scheduler.submit(lambda: "next", priority=FINAL)
        return str(result)

    try:
        asyncio.run(submit_and_leave())  # this loop is closed while `slow` still runs
        release.set()
        assert finished.wait(10)
        assert asyncio.run(asyncio.wait_for(next_job(), 10)) == "next"
        assert errors == []
    finally:
        threading.excepthook = previous_hook
        release.set()
        scheduler.close()


@dataclass(frozen=True)
class _Item:
    name: str
    group: str | None
    size: float


async def test_waiting_interims_of_one_group_run_as_one_batch() -> None:
    batches: list[list[str]] = []

    def run_batch(items: list[_Item]) -> list[str]:
        batches.append([item.name for item in items])
        if any(item.name == "bad" for item in items):
            raise ValueError("batch failed")
        return [f"{item.name}!" for item in items]

    scheduler = InferenceScheduler(workers=1, batch_runner=run_batch, max_batch=3)
    gate, running = threading.Event(), threading.Event()
    order: list[str] = []
    job = _recorder(order, gate, running)

    def interim(name: str, group: str | None, size: float) -> asyncio.Future[tuple[object, JobTiming]]:
        return scheduler.submit(job(name), priority=INTERIM, key=name, batch=_Item(name, group, size))

    try:
        blocker = scheduler.submit(job("blocker"), priority=FINAL)
        assert await asyncio.to_thread(running.wait, 10)
        a1 = interim("a1", "a", 2.0)
        b1 = interim("b1", "b", 2.0)  # another group: never in a's batch
        a2 = interim("a2", "a", 5.0)
        a3 = interim("a3", "a", 2.5)
        a4 = interim("a4", "a", 2.2)
        final = scheduler.submit(job("final"), priority=FINAL)
        alone = interim("alone", None, 2.0)  # not batchable: runs by itself, as submitted
        gate.set()
        results = await asyncio.gather(blocker, final, a1, a4, a3, a2, b1, alone)
        # The final ran alone before any interim; a1 took the two of its group closest in size (a4, a3); a2
        # and b1, each the last of its group, ran alone (their own job), as did the unbatchable one.
        assert order == ["blocker", "final", "b1", "a2", "alone"]
        assert batches == [["a1", "a4", "a3"]]
        assert [r[0] for r in results[2:5]] == ["a1!", "a4!", "a3!"]
        assert [r[0] for r in results[5:]] == ["a2", "b1", "alone"]
        assert len({r[1].run for r in results[2:5]}) == 1  # one run, reported to each of them
        # A failing batch fails every job in it, and the worker goes on.
        gate.clear()
        running.clear()
        blocker = scheduler.submit(job("blocker"), priority=FINAL)
        assert await asyncio.to_thread(running.wait, 10)
        failing = [interim("bad", "a", 1.0), interim("mate", "a", 1.0)]
        gate.set()
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        assert all(isinstance(o, ValueError) for o in outcomes), outcomes
        assert (await interim("after", "a", 1.0))[0] == "after"
    finally:
        gate.set()
        scheduler.close()


async def test_without_a_batch_runner_interims_run_one_by_one() -> None:
    scheduler = InferenceScheduler(workers=1, max_batch=4)
    gate, running = threading.Event(), threading.Event()
    order: list[str] = []
    job = _recorder(order, gate, running)
    try:
        blocker = scheduler.submit(job("blocker"), priority=FINAL)
        assert await asyncio.to_thread(running.wait, 10)
        waiting = [
            scheduler.submit(job(name), priority=INTERIM, key=name, batch=_Item(name, "a", 1.0))
            for name in ("x", "y")
        ]
        gate.set()
        await asyncio.gather(blocker, *waiting)
        assert order == ["blocker", "x", "y"]
    finally:
        gate.set()
        scheduler.close()
