"""An endpoint's final decoded before the endpoint (issue 16): speech_final sooner, same text.

An endpoint cuts the segment `post_roll_ms` after its last speech window, but only once the pause has lasted
`endpointing_ms`. From the moment the pause reaches the post-roll until the endpoint, the cut's audio is
already known (`Segmenter.endpoint_audio`): `EarlyFinal` decodes it then. When the endpoint comes with that
same audio and the same context, the final is that decode's result (same input, same options: the same text),
up to `endpointing_ms - post_roll_ms` sooner. When speech resumes first (or a stop, finalize or length cut
takes other audio), the decode is withdrawn if it still waits, and its result dropped if it already ran: a
pause of that length inside speech costs one decode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from voxrelay.engines.local.scheduler import FINAL, InferenceScheduler
from voxrelay.engines.local.segmenter import Cut

__all__ = ["EarlyFinal"]


@dataclass(frozen=True, slots=True)
class _Pending:
    start: float  # stream time of the decoded audio's first sample
    samples: int
    speech_end: float  # the segmenter's last speech end when it started
    context: object  # the final context it was decoded with (compared by identity)
    future: asyncio.Future[Any]


class EarlyFinal:
    """At most one early decode of a stream's current segment, on the shared scheduler as a final job."""

    def __init__(self, scheduler: InferenceScheduler) -> None:
        self._scheduler = scheduler
        self._key = object()  # a waiting early decode can be withdrawn
        self._pending: _Pending | None = None

    def pending_for(self, speech_end: float) -> bool:
        """True if an early decode of the pause after `speech_end` is on its way."""
        return self._pending is not None and self._pending.speech_end == speech_end

    def start(
        self, start: float, samples: int, speech_end: float, context: object, job: Callable[[], Any]
    ) -> None:
        """Decode `job` (the endpoint's final of `samples` from stream time `start`) now, dropping any older one."""
        self.drop()
        future = self._scheduler.submit(job, priority=FINAL, key=self._key)
        future.add_done_callback(_retrieve)
        self._pending = _Pending(start, samples, speech_end, context, future)

    def take(self, cut: Cut, context: object) -> asyncio.Future[Any] | None:
        """The early decode of exactly this cut (an endpoint, same audio, same context), or None."""
        pending = self._pending
        if pending is None:
            return None
        self._pending = None
        same = pending.start == cut.start and pending.samples == len(cut.audio) and pending.context is context
        if cut.speech_final and same and not pending.future.cancelled():
            return pending.future
        self._withdraw()
        return None

    def drop(self) -> None:
        """Speech resumed or the segment was cut otherwise: the early decode is stale."""
        if self._pending is not None:
            self._pending = None
            self._withdraw()

    def close(self) -> None:
        self._pending = None
        self._scheduler.release(self._key)

    def _withdraw(self) -> None:
        self._scheduler.cancel(self._key)  # a decode already running cannot be stopped: its result is dropped


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A dropped decode's error has no reader; read it here so asyncio does not report it as lost.
    if not future.cancelled():
        future.exception()
