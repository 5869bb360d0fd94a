"""The file lane: whole-file decoding on its own thread and its own model, beside the live scheduler.

Why a lane and not a priority on the shared `InferenceScheduler`: a file is decoded one
Whisper window per step (beam 5 over 30 s of audio, 1-3 s of CPU on 2 cores), and a step
cannot be interrupted, so on the one live worker a final that arrived just after a window
started waited for all of it (3 live sessions, final-after-stop p95 ~0.5 s alone, 1.3-1.6 s
during a 5-minute upload; docs/benchmarks.md). Here file steps never touch the live worker:
they run on this lane's thread with a second faster-whisper `WhisperModel` (same model,
device and compute type) that uses `file_cpu_threads` threads (1 by default), so the live
model keeps its threads and its queue. The second model is loaded on the first upload and
released when the engine stops.

Both models still share the cores, and that alone left finals ~200 ms slower during an
upload (p50). So on Linux the lane raises its own thread's nice value by `file_nice` (19 by
default) before it loads the model; the threads CTranslate2 starts for that model inherit
it. When a live decode and a file window want the same core, the kernel gives it to the live
decode and the file goes on with what is left: with it, finals during an upload were as fast
as alone. (Pausing the lane while a final runs would not do that: a final arrives while a
window is already decoding, and a window cannot be paused.) The price is that an upload on a
machine busy with other work is slower.

Concurrent uploads share the lane in FIFO order, one step each: a file's next window is
queued only after its previous one is done, so two files alternate window by window.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voxrelay.engines.base import EngineFailure
from voxrelay.engines.local.model_files import resolve_model
from voxrelay.engines.local.scheduler import JobTiming
from voxrelay.tasks import cancel_future, hand_back, settle_exception, settle_result

__all__ = ["FileLane", "lower_thread_priority", "whisper_model"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Step:
    fn: Callable[[Any], Any]  # gets the lane's model
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    submitted: float


class FileLane:
    """One thread that runs file steps in FIFO order against a model it loads on first use."""

    def __init__(
        self,
        load_model: Callable[[], Any],
        *,
        nice: int = 0,
        on_timing: Callable[[JobTiming], None] | None = None,
    ) -> None:
        self._load_model = load_model
        self._nice = nice
        self._on_timing = on_timing
        self._queue: collections.deque[_Step] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None  # started with the first step
        self._running = False  # a step is on the lane's thread
        self.model: Any = None  # loaded by the lane's thread on its first step; None again after close()

    def submit(self, fn: Callable[[Any], Any]) -> asyncio.Future[Any]:
        """Queue `fn(model)` (blocking) behind the steps already queued; its result comes back as a future.

        Must be called from the event loop. A step whose future is cancelled before it starts is skipped.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the file lane is closed")
            self._queue.append(_Step(fn, future, loop, time.perf_counter()))
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="file-lane", daemon=True)
                self._thread.start()
            self._cond.notify()
        return future

    @property
    def idle(self) -> bool:
        """No step is queued or running (metrics and tests: an abandoned upload's last window is done)."""
        with self._cond:
            return not self._queue and not self._running

    def close(self) -> None:
        """Stop after the step in hand (waiting steps are cancelled) and release the model."""
        with self._cond:
            self._closed = True
            for step in self._queue:
                hand_back(step.loop, cancel_future, step.future)
            self._queue.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=60)

    def _serve(self) -> None:
        if not lower_thread_priority(self._nice):
            log.warning("could not lower the file lane's CPU priority; file windows compete with live decodes")
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    step = self._queue.popleft()
                    # A step nobody waits for any more (its client went away) is skipped. Reading the future
                    # from this thread can race a cancel in progress; the worst case is running the step.
                    if step.future.cancelled():
                        continue
                    self._running = True
                try:
                    self._run(step)
                finally:
                    with self._cond:
                        self._running = False
        finally:
            self.model = None  # the lane's model goes with its thread

    def _run(self, step: _Step) -> None:
        started = time.perf_counter()
        try:
            if self.model is None:
                self.model = self._load()  # on this thread, so CTranslate2's threads inherit its priority
            result = step.fn(self.model)
        except BaseException as exc:  # handed to the awaiting upload, never lost
            hand_back(step.loop, settle_exception, step.future, exc)
        else:
            if self._on_timing is not None:
                self._on_timing(JobTiming(started - step.submitted, time.perf_counter() - started))
            hand_back(step.loop, settle_result, step.future, result)

    def _load(self) -> Any:
        try:
            return self._load_model()
        except Exception as exc:  # e.g. out of memory for the second copy: the upload fails clearly, the lane stays
            raise EngineFailure(f"could not load the file lane's model: {exc}") from exc


def whisper_model(name: str, device: str, compute_type: str, cpu_threads: int) -> Any:
    """A faster-whisper `WhisperModel` for the lane: the live model's name, device and compute type, its own threads."""
    from faster_whisper import WhisperModel  # the `whisper` extra; imported only when an upload needs it

    return WhisperModel(resolve_model(name), device=device, compute_type=compute_type, cpu_threads=cpu_threads)


def lower_thread_priority(nice: int) -> bool:
    """Add `nice` to the calling thread's nice value (Linux; the threads it starts inherit it). False if refused.

    Linux schedules threads as tasks with their own nice value, so this lowers this thread only; elsewhere
    the same call would renice the whole process, so it does nothing there (and returns True).
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return True
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        return False
    return True
