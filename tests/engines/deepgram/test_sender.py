"""A Deepgram stream's sending side: one order for every item, audio sent from the caller's task while idle."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from websockets.asyncio.client import ClientConnection

from voxrelay.engines.deepgram.sender import CLOSE, FINALIZE, UpstreamSender
from voxrelay.engines.deepgram.transport import ControlTexts

CONTROL = ControlTexts(finalize="F", close_stream="C", keep_alive="K")


class _Upstream:
    """websockets' `send`, recording what was sent and by which task; `hold` makes sends wait (a full buffer)."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, str]] = []
        self.hold: asyncio.Event | None = None

    async def send(self, data: Any) -> None:
        if self.hold is not None:
            await self.hold.wait()
        self.sent.append((data, asyncio.current_task().get_name()))  # type: ignore[union-attr]


async def _running(sender: UpstreamSender, upstream: _Upstream) -> asyncio.Task[None]:
    sender.start_connection()
    task = asyncio.create_task(sender.run(cast(ClientConnection, upstream), []), name="send-loop")
    await asyncio.sleep(0)  # the loop waits for items: idle
    return task


async def test_audio_goes_out_from_the_callers_task_while_the_loop_is_idle() -> None:
    recorded: list[bytes] = []
    sender, upstream = UpstreamSender(CONTROL, recorded.append), _Upstream()
    loop_task = await _running(sender, upstream)
    await asyncio.create_task(sender.send_audio(b"a"), name="reader")
    sender.queue(CLOSE)
    await loop_task
    assert upstream.sent == [(b"a", "reader"), ("F", "send-loop"), ("C", "send-loop")] and recorded == [b"a"]


async def test_audio_queues_behind_items_the_loop_holds_and_order_is_kept() -> None:
    sender, upstream = UpstreamSender(CONTROL, lambda _: None), _Upstream()
    loop_task = await _running(sender, upstream)
    sender.queue(FINALIZE)  # queued, not yet taken by the loop
    await sender.send_audio(b"after")
    sender.queue(CLOSE)
    await loop_task
    assert [data for data, _ in upstream.sent] == ["F", b"after", "F", "C"]


async def test_an_item_in_hand_when_the_connection_ends_goes_first_on_the_next() -> None:
    sender, upstream = UpstreamSender(CONTROL, lambda _: None), _Upstream()
    loop_task = await _running(sender, upstream)
    sender.end_connection()
    sender.queue(b"kept")  # wakes the loop, which sees the connection ending
    await loop_task
    assert upstream.sent == []
    sender.keep_alive()  # holds an item: no KeepAlive queued
    nxt = _Upstream()
    loop_task = await _running(sender, nxt)
    sender.queue(CLOSE)
    await loop_task
    assert [data for data, _ in nxt.sent] == [b"kept", "F", "C"]
