"""A lower CPU priority for decodes that can wait: uploads' windows (`local.file_lane`) and interims.

A decode cannot be interrupted, so a queue cannot keep a final from waiting for an interim or a file
window already running; the kernel can. On Linux every thread has its own nice value, and the threads
CTranslate2 starts for a model (created with it) inherit the nice value of the thread that loads the
model. So a model loaded on a thread whose nice value was raised decodes on low-priority threads: when
a live final and such a decode want the same core, the kernel gives it to the final, and the other goes
on with what is left. The price: on a machine busy with other work those decodes are slower too.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["built_at_lower_priority", "lower_thread_priority", "priority_is_per_thread"]

T = TypeVar("T")


def priority_is_per_thread() -> bool:
    """True where a thread's nice value is its own (Linux); elsewhere it is the whole process's."""
    return sys.platform.startswith("linux")


def lower_thread_priority(nice: int) -> bool:
    """Add `nice` to the calling thread's nice value (Linux; the threads it starts inherit it). False if refused.

    Linux schedules threads as tasks with their own nice value, so this lowers this thread only; elsewhere
    the same call would renice the whole process, so it does nothing there (and returns True).
    """
    if nice <= 0 or not priority_is_per_thread():
        return True
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        return False
    return True


def built_at_lower_priority(nice: int, build: Callable[[], T]) -> tuple[T, bool]:
    """`build()` on a new thread whose nice value is raised by `nice` first, and whether that was allowed.

    A thread of its own, so no pool thread (the caller's, asyncio's executor) is left at the lower
    priority; what `build` loads keeps the threads it started there.
    """
    results: list[T] = []
    errors: list[BaseException] = []
    lowered = [False]

    def run() -> None:
        lowered[0] = lower_thread_priority(nice)
        try:
            results.append(build())
        except BaseException as exc:  # raised again on the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="lower-priority-load", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0], lowered[0]
