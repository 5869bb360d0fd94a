"""Reads and writes of the usage tables, all async (the driver's calls do not run on the event loop's thread).

Writes are upserts by session id: a live session's row is rewritten with its latest figures,
so a write retried after a failure, or repeated, never doubles a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from voxrelay.usage.schema import quotas, usage_sessions, utc_now

__all__ = ["KeyUsage", "SessionRecord", "UsageStore"]


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session's row as it stands now (`ended_at`/`outcome` None while it runs)."""

    id: str
    key: str
    endpoint: str
    engine: str
    model: str
    gateway: str
    started_at: datetime
    audio_seconds: float
    ended_at: datetime | None = None
    outcome: str | None = None

    def row(self, updated_at: datetime) -> dict[str, Any]:
        return {
            "id": self.id, "key": self.key, "endpoint": self.endpoint, "engine": self.engine, "model": self.model,
            "gateway": self.gateway, "started_at": self.started_at, "ended_at": self.ended_at,
            "updated_at": updated_at, "audio_seconds": self.audio_seconds, "outcome": self.outcome,
        }


@dataclass(frozen=True, slots=True)
class KeyUsage:
    """One line of a report: a key's sessions and audio seconds (on one day with `group_by=day`)."""

    key: str
    sessions: int
    audio_seconds: float
    day: date | None = None


_UPDATED = ("ended_at", "updated_at", "audio_seconds", "outcome", "model")
# SQLAlchemy binds each row's parameters on the event loop's thread (only the driver's calls are awaited):
# a thousand live sessions' rows in one statement held the loop for ~15 ms every flush, the p99 of every
# message relayed meanwhile. In statements of this many rows, the loop runs between them.
_ROWS_PER_STATEMENT = 100


class UsageStore:
    """The usage tables of one database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    async def write(self, records: Sequence[SessionRecord]) -> None:
        """Insert or update these sessions' rows, in one transaction."""
        if not records:
            return
        now = utc_now()
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        statement = insert(usage_sessions)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={name: statement.excluded[name] for name in _UPDATED}
        )
        async with self.engine.begin() as connection:
            for start in range(0, len(records), _ROWS_PER_STATEMENT):
                rows = [record.row(now) for record in records[start : start + _ROWS_PER_STATEMENT]]
                await connection.execute(statement, rows)  # the loop runs relayed messages meanwhile

    async def close_abandoned(self, before: datetime) -> int:
        """Rows of sessions whose gateway stopped writing before `before` (killed) get `ended_at` = their last
        write and the outcome `abandoned`; returns how many. A gateway that was only cut off from the database
        reopens its rows with its next write (an upsert sets both fields)."""
        c = usage_sessions.c
        statement = (
            usage_sessions.update()
            .where(c.ended_at.is_(None), c.updated_at < before)
            .values(ended_at=c.updated_at, outcome="abandoned")
        )
        async with self.engine.begin() as connection:
            return (await connection.execute(statement)).rowcount

    async def month_totals(self, since: datetime, *, except_gateway: str | None = None) -> dict[str, float]:
        """Audio seconds per key of the sessions started since `since`, leaving out one gateway's own."""
        query = select(usage_sessions.c.key, func.sum(usage_sessions.c.audio_seconds)).where(
            usage_sessions.c.started_at >= since
        )
        if except_gateway is not None:
            query = query.where(usage_sessions.c.gateway != except_gateway)
        async with self.engine.connect() as connection:
            rows = await connection.execute(query.group_by(usage_sessions.c.key))
            return {key: float(total or 0.0) for key, total in rows}

    async def report(
        self, start: datetime, end: datetime, *, key: str | None = None, by_day: bool = False
    ) -> list[KeyUsage]:
        """Sessions and audio seconds per key (and day) for sessions started in [start, end)."""
        c = usage_sessions.c
        day = func.date(c.started_at).label("day")
        columns: list[Any] = [c.key, func.count(), func.sum(c.audio_seconds)]
        group: list[Any] = [c.key]
        if by_day:
            columns.append(day)
            group.append(day)
        query = select(*columns).where(c.started_at >= start, c.started_at < end)
        if key is not None:
            query = query.where(c.key == key)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query.group_by(*group).order_by(*group))).all()
        return [
            KeyUsage(row[0], int(row[1]), round(float(row[2] or 0.0), 3), _as_date(row[3]) if by_day else None)
            for row in rows
        ]

    async def sessions(self, key: str | None = None) -> list[dict[str, Any]]:
        """Every session row (oldest first), for tests and audits."""
        query = select(usage_sessions).order_by(usage_sessions.c.started_at)
        if key is not None:
            query = query.where(usage_sessions.c.key == key)
        async with self.engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(query)]

    async def quotas(self) -> dict[str, float]:
        """Per-key quota overrides: audio seconds per month (0 = unlimited)."""
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(quotas.c.key, quotas.c.audio_seconds))
            return {key: float(seconds) for key, seconds in rows}

    async def set_quota(self, key: str, audio_seconds: float | None) -> None:
        """Set a key's own quota, or remove it (None: the default applies again)."""
        async with self.engine.begin() as connection:
            await connection.execute(quotas.delete().where(quotas.c.key == key))
            if audio_seconds is not None:
                await connection.execute(
                    quotas.insert().values(key=key, audio_seconds=audio_seconds, updated_at=utc_now())
                )


def _as_date(value: Any) -> date:
    # SQLite's date() gives text, PostgreSQL's a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value))
