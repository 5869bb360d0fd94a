import asyncio
import threading
import time

import pytest

from voxrelay.engines.local.scheduler import FINAL, INTERIM, InferenceScheduler


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
