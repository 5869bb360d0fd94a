"""The hand-offs between a connection's tasks: `Wakeup` (an Event for one waiter) and `Mailbox` (a FIFO)."""

from __future__ import annotations

import asyncio

import pytest

from voxrelay.tasks import Mailbox, Wakeup


async def test_a_wakeup_set_before_the_wait_returns_at_once() -> None:
    wakeup = Wakeup(is_set=True)
    await wakeup.wait()
    wakeup.clear()
    assert not wakeup.is_set()


async def test_a_waiter_wakes_when_set_even_if_cleared_before_it_runs() -> None:
    wakeup = Wakeup()
    waiter = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)  # the waiter is waiting
    wakeup.set()
    wakeup.clear()  # as asyncio.Event: the waiter was already woken
    await waiter


async def test_a_second_waiter_is_refused() -> None:
    wakeup = Wakeup()
    first = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await wakeup.wait()
    wakeup.set()
    await first


async def test_a_cancelled_wait_leaves_the_wakeup_usable() -> None:
    wakeup = Wakeup()
    waiter = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    again = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)
    wakeup.set()
    await again


async def test_a_mailbox_hands_items_over_in_order() -> None:
    mailbox: Mailbox[int] = Mailbox()
    assert mailbox.empty()
    mailbox.put_nowait(1)
    mailbox.put_nowait(2)
    assert mailbox.qsize() == 2
    assert [await mailbox.get(), await mailbox.get()] == [1, 2]
    getter = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)  # waiting on an empty mailbox
    mailbox.put_nowait(3)
    assert await getter == 3


async def test_a_cancelled_get_loses_no_item() -> None:
    mailbox: Mailbox[str] = Mailbox()
    getter = asyncio.ensure_future(mailbox.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    mailbox.put_nowait("kept")
    assert await mailbox.get() == "kept"


def test_take_all_empties_the_mailbox_oldest_first() -> None:
    mailbox: Mailbox[int] = Mailbox()
    for item in (1, 2, 3):
        mailbox.put_nowait(item)
    assert mailbox.take_all() == [1, 2, 3]
    assert mailbox.empty() and mailbox.take_all() == []
