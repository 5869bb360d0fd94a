"""The per-connection watchdog: KeepAlive for a silent stream, and a stalled send cancelled in time."""

from __future__ import annotations

import asyncio

from voxrelay.engines.deepgram.watchdog import SendClock, Watchdog


async def a_send_that_never_completes() -> None:
    await asyncio.Event().wait()


async def test_a_silent_connection_gets_keepalives() -> None:
    loop = asyncio.get_running_loop()
    clock = SendClock(loop.time())
    kept = asyncio.Event()
    sender = asyncio.create_task(a_send_that_never_completes())  # nothing to send
    watchdog = Watchdog(sender, clock, keepalive_s=0.05, send_timeout_s=10.0, keep_alive=kept.set)
    try:
        await asyncio.wait_for(kept.wait(), 5)
        assert not watchdog.stalled and not sender.done()
    finally:
        watchdog.cancel()
        sender.cancel()


async def test_a_send_stuck_past_the_timeout_is_cancelled() -> None:
    loop = asyncio.get_running_loop()
    clock = SendClock(loop.time())
    clock.began = loop.time()  # a send that never completes (the upstream stopped reading)
    sender = asyncio.create_task(a_send_that_never_completes())
    watchdog = Watchdog(sender, clock, keepalive_s=0.02, send_timeout_s=0.1, keep_alive=lambda: None)
    await asyncio.wait({sender}, timeout=5)
    assert sender.cancelled() and watchdog.stalled
    assert loop.time() - clock.began >= 0.1
