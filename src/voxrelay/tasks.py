"""Task housekeeping shared by the connection handlers and engines, and handing results from threads to a loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

__all__ = ["Mailbox", "Wakeup", "cancel_and_wait", "cancel_future", "hand_back", "settle_exception", "settle_result"]

T = TypeVar("T")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel every task, then wait for each to finish; their errors were already reported."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


# A worker thread hands each result to its caller's loop with `loop.call_soon_threadsafe(settle_result, ...)`;
# the caller may have cancelled the future meanwhile (it went away), so settling checks first.


def settle_result(future: asyncio.Future[Any], value: Any) -> None:
    """Set `value` unless the future was cancelled meanwhile (run on the future's loop)."""
    if not future.done():
        future.set_result(value)


def settle_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Set `exc` unless the future was cancelled meanwhile (run on the future's loop)."""
    if not future.done():
        future.set_exception(exc)


def cancel_future(future: asyncio.Future[Any]) -> None:
    """Cancel the future (run on its loop)."""
    future.cancel()


def hand_back(loop: asyncio.AbstractEventLoop, settle: Callable[..., None], *args: Any) -> bool:
    """From a worker thread, run `settle(*args)` on `loop`; False if the loop is closed (its `asyncio.run` ended
    while the thread still worked for it: nobody is left to await the result, and the thread must live on)."""
    try:
        loop.call_soon_threadsafe(settle, *args)
    except RuntimeError:
        if not loop.is_closed():
            raise
        return False
    return True


# Hot-path hand-offs between a connection's tasks. On Python 3.11 every blocking `asyncio.Event.wait()`
# and `asyncio.Queue.get()` looks its loop up with `get_running_loop()`, which makes a getpid() system
# call each time; at a thousand relayed streams (three hand-offs per message) that was ~10 % of the
# gateway's CPU (docs/benchmarks.md, issue 17). These two bind their loop once, at the first wait.


class Wakeup:
    """`asyncio.Event` for ONE waiting task: `set`, `clear`, `is_set`, `await wait()`.

    A second task waiting while one waits is a bug (it raises `RuntimeError`).
    """

    __slots__ = ("_loop", "_set", "_waiter")

    def __init__(self, is_set: bool = False) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._set = is_set
        self._waiter: asyncio.Future[None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if not self._set:
            self._set = True
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        """Return at once if set, else when `set()` is called."""
        if self._set:
            return
        if self._waiter is not None:
            raise RuntimeError("Wakeup has one waiter at a time")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None


class Mailbox(Generic[T]):
    """An unbounded FIFO read by ONE task: `asyncio.Queue`'s `put_nowait`, `empty` and `await get()`."""

    __slots__ = ("_items", "_ready")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._ready = Wakeup()

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._ready.set()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    def take_all(self) -> list[T]:
        """Every item, oldest first, without waiting; the mailbox is left empty."""
        items = list(self._items)
        self._items.clear()
        return items

    async def get(self) -> T:
        """The oldest item; waits for one if there is none (cancelling the wait loses nothing)."""
        items = self._items
        while not items:
            self._ready.clear()
            await self._ready.wait()
        return items.popleft()
