"""One Deepgram stream's sending side: its queue of audio and control messages, and the loop that sends them.

The stream (`stream.DeepgramStream`) queues audio, Finalize and CloseStream here, and one
task per upstream connection runs `run(ws, backlog)`, which sends them in order. While that
loop holds nothing (its queue is empty, it carries no item, no send of its own is in
progress), `send_audio` sends a frame on the connection from the caller's task instead: a
relayed frame then costs no task switch (docs/benchmarks.md, issue 17). websockets' `send`
suspends only while the upstream's buffer is full; both paths stamp the `SendClock` that the
connection's `Watchdog` reads, so a stalled upstream is caught either way.

    sender = UpstreamSender(control, record)      # record: audio about to be sent (for a replay)
    clock = sender.start_connection()             # per connection, for its Watchdog
    await sender.run(ws, backlog)                 # on the connection's send task
    sender.end_connection()                       # when the connection ends; items wait for the next
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import websockets.exceptions
from websockets.asyncio.client import ClientConnection

from voxrelay.engines.deepgram.transport import ControlTexts
from voxrelay.engines.deepgram.watchdog import SendClock
from voxrelay.tasks import Mailbox

__all__ = ["CLOSE", "FINALIZE", "UpstreamSender"]

FINALIZE = "finalize"
CLOSE = "close"  # Finalize, then CloseStream
_KEEPALIVE = "keepalive"


class UpstreamSender:
    """The items a stream sends upstream, in order, over one connection after another.

    Args:
        control: the JSON of Finalize, CloseStream and KeepAlive.
        record: called with each audio frame just before it is sent (kept for a replay).
    """

    def __init__(self, control: ControlTexts, record: Callable[[bytes], None]) -> None:
        self._control = control
        self._record = record
        self._inbox: Mailbox[bytes | str] = Mailbox()  # to the send task (tasks.Mailbox: no per-get loop lookup)
        self._carry: bytes | str | None = None  # taken from the inbox but not sent when a connection ended
        self._ws: ClientConnection | None = None  # set while the send loop waits for items
        self._loop = asyncio.get_running_loop()
        self.clock = SendClock(0.0)  # the current connection's send times (read by its Watchdog)
        self.sending = True  # the current connection is up
        self.close_sent = False

    def queue(self, item: bytes | str) -> None:
        """Audio bytes, `FINALIZE` or `CLOSE`, after everything queued before."""
        self._inbox.put_nowait(item)

    async def send_audio(self, audio: bytes) -> None:
        """Send the frame from the caller's task while the send loop holds nothing, else queue it."""
        ws, clock = self._ws, self.clock
        if ws is None or clock.began is not None or not self._inbox.empty() or self._carry is not None:
            self._inbox.put_nowait(audio)
            return
        clock.began = self._loop.time()
        self._record(audio)  # before the send, as the loop does: a reconnect replays it if it is lost
        try:
            await ws.send(audio)
        except websockets.exceptions.ConnectionClosed:
            return  # the stream's reader reports why
        finally:
            clock.began = None
        clock.last = self._loop.time()

    def keep_alive(self) -> None:
        """Nothing was sent for a while (a silent client): queue a KeepAlive (called by the watchdog)."""
        if self._inbox.empty() and self._carry is None:
            self._inbox.put_nowait(_KEEPALIVE)

    def start_connection(self) -> SendClock:
        """A new upstream connection: its clock. After a reconnect, a CloseStream sent before is sent again
        (it may not have arrived)."""
        self.sending = True
        if self.close_sent:
            self._inbox.put_nowait(CLOSE)
        self.clock = SendClock(self._loop.time())
        return self.clock

    def end_connection(self) -> None:
        """The connection is ending: the loop stops, `send_audio` queues for the next one."""
        self.sending = False
        self._ws = None

    async def run(self, ws: ClientConnection, backlog: list[bytes]) -> None:
        """Send `backlog` (a reconnect's replay, recorded already, or a container header), then every item,
        until CloseStream is sent or the connection ends."""
        control, loop, clock = self._control, self._loop, self.clock
        clock.last = loop.time()
        try:
            for chunk in backlog:
                clock.began = loop.time()
                await ws.send(chunk)
                clock.began = None
            self._ws = ws  # from here on, `send_audio` may send on `ws` itself while this loop holds nothing
            # `sending` as well as cancellation: a cancel that lands as an awaited future
            # completes can be swallowed, and the loop must still end.
            while self.sending:
                item: bytes | str | None
                if self._carry is not None:
                    item, self._carry = self._carry, None
                else:
                    item = await self._inbox.get()
                if self._connection_ending():
                    # The connection is going away with an item in hand: it goes first on the next
                    # connection (dropping it here lost 100 ms of audio in the fault test).
                    self._carry = item
                    return
                clock.began = loop.time()
                if isinstance(item, bytes):
                    self._record(item)
                    await ws.send(item)
                elif item == _KEEPALIVE:
                    await ws.send(control.keep_alive)
                elif item == FINALIZE:
                    await ws.send(control.finalize)
                else:
                    self.close_sent = True
                    await ws.send(control.finalize)
                    await ws.send(control.close_stream)
                    return
                clock.last = clock.began
                clock.began = None
        except websockets.exceptions.ConnectionClosed:
            return  # the stream's reader reports why
        finally:
            self._ws = None
            clock.began = None

    def _connection_ending(self) -> bool:
        """Whether the connection ended (a method: the flag changes while the loop awaits)."""
        return not self.sending
