"""A connection's writer queue: order, back-pressure, and a task carrying out actions while the writer waits."""

from __future__ import annotations

import asyncio

from voxrelay.gateway.writer_queue import WriterQueue
from voxrelay.protocol.actions import CloseSocket, FeedAudio, SendText


async def test_the_writer_takes_actions_in_order_and_returns_none_once_closed() -> None:
    queue, closed = WriterQueue(), asyncio.Event()
    first, second = SendText("a", "other", None), FeedAudio(b"x")
    queue.put([first, second])
    assert await queue.take(closed) is first and not queue.idle
    queue.done()
    assert await queue.take(closed) is second
    queue.done()
    assert queue.idle
    closed.set()
    assert await queue.take(closed) is None


async def test_the_room_closes_at_the_high_water_mark_and_opens_below_half() -> None:
    queue, closed = WriterQueue(high_water=4), asyncio.Event()
    queue.put([FeedAudio(b"x")] * 4)
    assert not queue.room.is_set()
    for _ in range(2):
        await queue.take(closed)
        queue.done()
    assert not queue.room.is_set()  # 2 left: not below half yet
    await queue.take(closed)
    assert queue.room.is_set()


async def test_the_writer_waits_while_another_task_claimed_the_turn() -> None:
    queue, closed = WriterQueue(), asyncio.Event()
    queue.claim()
    taken = asyncio.ensure_future(queue.take(closed))
    queue.put([SendText("later", "other", None)])
    await asyncio.sleep(0)
    assert not taken.done()  # queued behind what the claiming task is sending
    queue.release()
    action = await taken
    assert isinstance(action, SendText) and action.text == "later"


async def test_replace_and_drop_audio() -> None:
    queue, closed = WriterQueue(), asyncio.Event()
    queue.put([FeedAudio(b"x"), SendText("final", "final", None), FeedAudio(b"y")])
    queue.drop_audio()
    assert len(queue) == 1
    queue.replace(CloseSocket(1012, "the server is restarting"))
    action = await queue.take(closed)
    assert isinstance(action, CloseSocket) and len(queue) == 0
