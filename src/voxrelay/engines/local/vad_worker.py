"""Silero VAD for every stream of the local engine, on one worker thread.

Scoring 32 ms of audio takes ~0.1 ms of ONNX; at 16 live sessions that is hundreds of
calls a second, each of which would stall every other session's I/O if it ran on the
event loop. Streams instead queue their audio here. The worker takes everything
queued by all streams at once (one batch per wake-up), scores it in submission
order, each item with its own stream's `VadState`, and hands the batch's results back
to each event loop in one `call_soon_threadsafe`.

Why not one ONNX call for the whole batch: the Silero v6 model that faster-whisper
ships reads its first input dimension as *time* (consecutive windows of one stream)
and its LSTM state is fixed at batch size 1, so windows of different streams cannot
share a call without mixing their state. Measured on the dev machine: 16 streams x 1
window as 16 calls cost 1.1 ms, one call of 16 windows 1.2 ms, so a batched model
would not be cheaper anyway. Calling exactly what `SileroVad.probabilities` would
have been called with inline also keeps every probability, so segment cuts and
transcripts, bit for bit the same.

Call order: `VadWorker(vad)` starts the thread; `open()` gives each stream a
`VadSession`; the stream calls `score(audio)` for each frame and `flush()` at a
finalize or stop, from its event loop, and awaits the returned futures in the order
it made them; `VadSession.close()` drops its queued work; `VadWorker.close()` stops
the thread (from any thread but the loop's, e.g. via `asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from voxrelay.engines.local.vad import SileroVad, VadState
from voxrelay.tasks import hand_back

__all__ = ["VadSession", "VadWorker", "VadWorkerClosed"]

log = logging.getLogger(__name__)

_EMPTY = np.zeros(0, dtype=np.float32)


class VadWorkerClosed(RuntimeError):
    """The VAD worker was stopped (the engine is stopping) before it scored this audio."""


@dataclass(slots=True)
class _Request:
    session: VadSession
    audio: np.ndarray
    flush: bool
    future: asyncio.Future[np.ndarray]
    loop: asyncio.AbstractEventLoop


# (request, probabilities, error): what the worker hands back for one request.
_Outcome = tuple[_Request, "np.ndarray | None", "BaseException | None"]


class VadSession:
    """One stream's VAD state in the worker. Use it from the stream's event loop only."""

    def __init__(self, worker: VadWorker) -> None:
        self._worker = worker
        self.state = VadState()  # touched only by the worker thread once the stream has submitted
        self.closed = False

    def score(self, audio: np.ndarray) -> asyncio.Future[np.ndarray]:
        """Queue `audio`; the future gives what `SileroVad.probabilities(state, audio)` returns."""
        return self._worker.submit(self, audio, flush=False)

    def flush(self) -> asyncio.Future[np.ndarray]:
        """Queue the end of the audio so far: the last partial window, padded with silence, is scored too."""
        return self._worker.submit(self, _EMPTY, flush=True)

    def close(self) -> None:
        """Drop this stream's queued work (its futures are cancelled); idempotent."""
        if not self.closed:
            self._worker.discard(self)


class VadWorker:
    """The thread that runs Silero VAD for every stream of one engine."""

    def __init__(self, vad: SileroVad) -> None:
        self._vad = vad
        self._queue: list[_Request] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batches = 0  # wake-ups that scored something (for tests and debugging)
        self._thread = threading.Thread(target=self._serve, name="vad-worker", daemon=True)
        self._thread.start()

    # Public methods for streams (on their event loop).

    def open(self) -> VadSession:
        """A new stream's VAD state."""
        return VadSession(self)

    def submit(self, session: VadSession, audio: np.ndarray, *, flush: bool) -> asyncio.Future[np.ndarray]:
        """Queue one request of `session`. Must be called from the event loop that awaits the future.

        Never raises: after `close()` (or the session's close) the future fails with
        `VadWorkerClosed` (or is cancelled) instead.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        with self._cond:
            if self._closed:
                future.set_exception(VadWorkerClosed("the VAD worker is stopped"))
            elif session.closed:
                future.cancel()
            else:
                self._queue.append(_Request(session, audio, flush, future, loop))
                self._cond.notify()
        return future

    def discard(self, session: VadSession) -> None:
        """Close `session`: its queued requests are dropped and their futures cancelled (on this loop)."""
        with self._cond:
            session.closed = True
            dropped = [r for r in self._queue if r.session is session]
            self._queue = [r for r in self._queue if r.session is not session]
        for request in dropped:
            request.future.cancel()

    @property
    def queued(self) -> int:
        """Requests waiting for the worker."""
        with self._cond:
            return len(self._queue)

    # Public methods for the engine.

    def close(self) -> None:
        """Stop the thread after the batch in hand; queued futures fail with `VadWorkerClosed`. Blocks."""
        with self._cond:
            self._closed = True
            dropped, self._queue = self._queue, []
            self._cond.notify_all()
        _hand_back([(r, None, VadWorkerClosed("the VAD worker stopped")) for r in dropped])
        self._thread.join(timeout=30)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # The worker thread.

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch, self._queue = self._queue, []
            try:
                self._score(batch)
            except BaseException:  # never lose the thread: every stream of the engine depends on it
                log.exception("VAD worker: a batch failed")

    def _score(self, batch: list[_Request]) -> None:
        outcomes: list[_Outcome] = []
        for request in batch:
            if request.session.closed:  # closed while queued in this batch: its futures are cancelled
                continue
            try:
                probs = self._vad.probabilities(request.session.state, request.audio, flush=request.flush)
            except Exception as exc:  # the stream that sent it fails, the others go on
                outcomes.append((request, None, exc))
            else:
                outcomes.append((request, probs, None))
        self.batches += 1
        _hand_back(outcomes)


def _hand_back(outcomes: list[_Outcome]) -> None:
    """Resolve each future on its own loop: one `call_soon_threadsafe` per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_loop[outcome[0].loop].append(outcome)
    for loop, items in by_loop.items():
        if not hand_back(loop, _resolve, items):  # the loop is closed: nobody is waiting for these any more
            log.warning("VAD worker: dropped %d results for a closed event loop", len(items))


def _resolve(items: list[_Outcome]) -> None:
    """On the loop: set each future; those of a closed session end cancelled, like its queued ones."""
    for request, probs, error in items:
        future = request.future
        try:
            if request.session.closed:  # closed while in the worker's hands: nobody reads it
                future.cancel()
                continue
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(probs)  # type: ignore[arg-type]
        except Exception:  # one bad future must not keep the rest of the batch from its streams
            log.exception("VAD worker: could not hand back a result")
