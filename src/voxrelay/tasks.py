"""Task housekeeping shared by the connection handlers and engines, and handing results from threads to a loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait", "cancel_future", "settle_exception", "settle_result"]


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
