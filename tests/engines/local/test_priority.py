import os
import sys
import threading

import pytest

from voxrelay.engines.local.priority import built_at_lower_priority, lower_thread_priority

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")


def thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_only
def test_what_is_built_runs_at_the_lower_priority_and_the_caller_keeps_its_own() -> None:
    before = thread_nice()
    started: list[int] = []

    def build() -> int:
        # A thread started here (as CTranslate2 starts its workers) inherits the raised value.
        worker = threading.Thread(target=lambda: started.append(thread_nice()))
        worker.start()
        worker.join()
        return thread_nice()

    built_nice, lowered = built_at_lower_priority(5, build)
    assert lowered
    assert built_nice == min(19, before + 5)
    assert started == [built_nice]
    assert thread_nice() == before


def test_an_error_while_building_reaches_the_caller() -> None:
    def build() -> None:
        raise MemoryError("no room for a second model")

    with pytest.raises(MemoryError, match="second model"):
        built_at_lower_priority(5, build)


def test_nice_zero_changes_nothing() -> None:
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert lower_thread_priority(0)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
