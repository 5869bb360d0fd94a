"""Metering in memory, written to the database in the background; quota decisions from the figures known.

The hot path never touches the database: a session's audio seconds are added up in memory
(`Meter.add`, a few float operations per frame) and a background task writes every live
session's row, and the rows of sessions that ended, every `usage_flush_s` (≤ 5 s), so a
SIGKILL loses at most that much of a live session. Rows are upserts by session id: a write
repeated after a failure never doubles a record.

When the database is away or slow, sessions go on: ended sessions' records wait in memory (at
most `usage_buffer` of them; the oldest are dropped past that, and counted), each failure is
logged once per outage and counted in `voxrelay_usage_db_errors_total`, and quotas use the last
figures read. A write that takes longer than its timeout is abandoned and retried next time.

A key's use this month = what other gateways wrote (read back every flush) + what this process
metered itself (exact, in memory). So several gateways on one database hold one quota, within
about a write interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from voxrelay.ops.metrics import Metrics
from voxrelay.settings import Settings
from voxrelay.usage.database import SchemaTooNew, upgrade
from voxrelay.usage.schema import utc_now
from voxrelay.usage.store import SessionRecord, UsageStore

__all__ = ["ANONYMOUS", "LiveSession", "Meter", "QuotaState", "month_start", "next_month_start"]

log = logging.getLogger("voxrelay.usage")

ANONYMOUS = "anonymous"  # the key of sessions admitted with auth off
WARN_AT = 0.9  # the in-session warning, as a share of the quota
# A live session's row is rewritten every flush (≤ 5 s): one untouched this long was left by a killed gateway.
ABANDONED_AFTER = timedelta(minutes=10)
_SWEEP_EVERY = timedelta(minutes=5)

QuotaState = Literal["ok", "warning", "exceeded"]
T = TypeVar("T")
DbOperation = Literal["migrate", "write", "read"]


def month_start(when: datetime) -> datetime:
    return when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(when: datetime) -> datetime:
    start = month_start(when)
    return start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)


@dataclass(slots=True)
class LiveSession:
    """A session being metered: its row's fixed fields, its audio seconds so far, where its quota stands."""

    record: SessionRecord  # its audio_seconds is stale: `snapshot` has the figure
    month: datetime
    audio_seconds: float = 0.0  # a plain float: added to after every frame
    warned: bool = False
    exceeded: bool = False

    @property
    def key(self) -> str:
        return self.record.key

    def snapshot(self) -> SessionRecord:
        return replace(self.record, audio_seconds=self.audio_seconds)


@dataclass(slots=True)
class _Figures:
    """What the database said at the last read: other gateways' use this month, and quota overrides."""

    month: datetime | None = None
    others: dict[str, float] = field(default_factory=dict)
    overrides: dict[str, float] = field(default_factory=dict)


class Meter:
    """One process's metering. `start` (migrations, first read), then `open`/`add`/`close` per session, `stop`.

    Args:
        settings: quota, flush interval, buffer size.
        engine: the usage database (`database.create_engine`).
        metrics: where database errors and the in-memory backlog are counted.
        clock: naive-UTC now (tests move it to a month's end).
    """

    def __init__(
        self, settings: Settings, engine: AsyncEngine, metrics: Metrics | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.store = UsageStore(engine)
        self.metrics = metrics
        self.clock = clock
        self.gateway_id = f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.timeout_s = max(5.0, 2 * settings.usage_flush_s)
        self._live: dict[str, LiveSession] = {}
        self._pending: OrderedDict[str, SessionRecord] = OrderedDict()  # ended, not yet written
        self._mine: dict[tuple[datetime, str], float] = {}  # this process's audio seconds per (month, key)
        self._figures = _Figures()
        self._month = month_start(clock())
        self._migrated = False
        self._swept: datetime | None = None  # the last close of abandoned rows
        self._failing: set[DbOperation] = set()  # operations failing now: logged once per outage
        self._lock = asyncio.Lock()  # one flush at a time (the timer's, a report's, the last one)
        self._task: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.usage_pending.set_function(lambda: float(len(self._pending)))

    # Sessions (called on the event loop; no I/O).

    def open(self, session_id: str, key: str | None, endpoint: str, engine: str, model: str) -> LiveSession:
        now = self.clock()
        record = SessionRecord(session_id, key or ANONYMOUS, endpoint, engine, model, self.gateway_id, now, 0.0)
        session = LiveSession(record, month_start(now))
        self._live[session_id] = session
        return session

    def add(self, session: LiveSession, audio_seconds: float) -> QuotaState:
        """The session has received `audio_seconds` in all; says when it first reaches 90 % or 100 % of its quota."""
        delta = audio_seconds - session.audio_seconds
        if delta > 0:
            session.audio_seconds = audio_seconds
            slot = (session.month, session.key)
            self._mine[slot] = self._mine.get(slot, 0.0) + delta
        quota = self.quota(session.key)
        if quota <= 0 or session.exceeded:
            return "ok"
        used = self.used(session.key)
        if used >= quota:
            session.exceeded = True
            return "exceeded"
        if used >= WARN_AT * quota and not session.warned:
            session.warned = True
            return "warning"
        return "ok"

    def close(self, session: LiveSession, outcome: str) -> None:
        """The session ended: its final row waits for the next write."""
        if self._live.pop(session.record.id, None) is None:
            return
        self._keep(replace(session.snapshot(), ended_at=self.clock(), outcome=outcome))

    def record_file(self, key: str | None, endpoint: str, engine: str, model: str, audio_seconds: float,
                    outcome: str) -> None:
        """A file transcription: one record, opened and closed at once."""
        session = self.open(f"file-{uuid.uuid4().hex}", key, endpoint, engine, model)
        self.add(session, audio_seconds)
        self.close(session, outcome)

    # Quotas.

    def quota(self, key: str) -> float:
        """The key's audio seconds per month (0 = unlimited): its own, else the default."""
        return self._figures.overrides.get(key, self.settings.quota_audio_s)

    def used(self, key: str) -> float:
        """The key's audio seconds this month, as far as this process knows."""
        month = self._month  # not read from the clock per frame: a new month is seen at the next flush
        others = self._figures.others.get(key, 0.0) if self._figures.month == month else 0.0
        return others + self._mine.get((month, key), 0.0)

    def retry_after(self, key: str | None) -> int | None:
        """Seconds until the key may stream again (the next month), or None when it is under its quota."""
        key = key or ANONYMOUS
        quota = self.quota(key)
        if quota <= 0 or self.used(key) < quota:
            return None
        now = self.clock()
        return max(1, round((next_month_start(now) - now).total_seconds()))

    def set_override(self, key: str, audio_seconds: float | None) -> None:
        """Apply a quota just written to the database without waiting for the next read."""
        if audio_seconds is None:
            self._figures.overrides.pop(key, None)
        else:
            self._figures.overrides[key] = audio_seconds

    # The background writer.

    async def start(self) -> None:
        """Migrate and read the figures (a database that is away is retried in the background).

        Raises:
            SchemaTooNew: the database belongs to a newer voxrelay.
        """
        await self.flush()
        self._task = asyncio.create_task(self._run(), name="usage-flush")

    async def stop(self) -> None:
        """Stop the timer and write what is left (bounded by the write timeout)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._pending or self._live:
            log.error("usage: %d session records could not be written before the stop",
                      len(self._pending) + len(self._live))

    async def flush(self) -> None:
        """Write every live and ended session's row, then read other gateways' figures and the quotas."""
        async with self._lock:
            self._month = month_start(self.clock())  # also while the database is away
            if not self._migrated:
                migrated, _ = await self._attempt("migrate", upgrade(self.store.engine))
                if not migrated:
                    return
                self._migrated = True
            written = [*self._pending.values(), *(session.snapshot() for session in self._live.values())]
            if written and (await self._attempt("write", self.store.write(written)))[0]:
                for record in written:
                    if self._pending.get(record.id) is record:
                        del self._pending[record.id]
            await self._sweep()
            await self._read()

    def read_failed(self) -> None:
        """A read for a report or a quota change failed (the caller answers 503)."""
        if self.metrics is not None:
            self.metrics.usage_db_error("read")
        log.error("usage database read failed; the report or quota change was answered 503")

    @property
    def pending(self) -> int:
        """Ended sessions' records waiting to be written."""
        return len(self._pending)

    # Private helpers.

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.usage_flush_s)
            await self.flush()

    async def _sweep(self) -> None:
        """At start-up and every few minutes: close the rows killed gateways left open."""
        now = self.clock()
        if self._swept is not None and now - self._swept < _SWEEP_EVERY:
            return
        done, closed = await self._attempt("write", self.store.close_abandoned(now - ABANDONED_AFTER))
        if done:
            self._swept = now
            if closed:
                log.warning("usage: %d session(s) left open by a stopped gateway closed as abandoned", closed)

    async def _read(self) -> None:
        month = self._month
        totals = self.store.month_totals(month, except_gateway=self.gateway_id)
        read_others, others = await self._attempt("read", totals)
        read_overrides, overrides = await self._attempt("read", self.store.quotas())
        if read_others and read_overrides and others is not None and overrides is not None:
            self._figures = _Figures(month, others, overrides)

    async def _attempt(self, operation: DbOperation, work: Awaitable[T]) -> tuple[bool, T | None]:
        """Await `work` within the timeout: (True, its result), or (False, None) after a failure, which is
        logged (once per outage) and counted."""
        try:
            if sys.version_info >= (3, 11):
                # asyncio.timeout: no helper task (3.11's wait_for makes one per call, which a soak's count of
                # the loop's tasks would see come and go with every flush).
                async with asyncio.timeout(self.timeout_s):
                    result = await work
            else:
                result = await asyncio.wait_for(work, self.timeout_s)
        except SchemaTooNew:
            raise
        except Exception as exc:  # any driver's error: the database is away, slow or refusing
            if self.metrics is not None:
                self.metrics.usage_db_error(operation)
            if operation not in self._failing:
                self._failing.add(operation)
                log.error("usage database %s failed (%s: %s); sessions go on, records wait in memory "
                          "(%d ended, %d live)", operation, type(exc).__name__,
                          str(exc)[:200] or f"no answer in {self.timeout_s:g} s",
                          len(self._pending), len(self._live))
            return False, None
        if operation in self._failing:
            self._failing.discard(operation)
            log.warning("usage database %s works again", operation)
        return True, result

    def _keep(self, record: SessionRecord) -> None:
        self._pending[record.id] = record
        while len(self._pending) > self.settings.usage_buffer:
            dropped, _ = self._pending.popitem(last=False)
            if self.metrics is not None:
                self.metrics.usage_dropped.inc()
            log.error("usage: the in-memory buffer is full; the record of session %s is dropped", dropped)
