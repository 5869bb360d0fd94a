"""What `voxrelay db upgrade`, `voxrelay usage` and `voxrelay quota` do, straight on the database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import TypeVar

from voxrelay.settings import Settings
from voxrelay.usage.database import create_engine, database_url, describe, upgrade
from voxrelay.usage.schema import utc_now
from voxrelay.usage.store import KeyUsage, UsageStore

__all__ = ["format_table", "run_db_upgrade", "run_quota", "run_usage"]

T = TypeVar("T")


def _with_store(settings: Settings, work: Callable[[UsageStore], Awaitable[T]], *, migrate: bool = True) -> T:
    async def main() -> T:
        engine = create_engine(database_url(settings))
        try:
            if migrate:
                await upgrade(engine)
            return await work(UsageStore(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


def run_db_upgrade(settings: Settings) -> str:
    """Migrate the database to this code's schema; a line saying where it stands."""

    async def nothing(_store: UsageStore) -> None:
        return None

    url = database_url(settings)
    _with_store(settings, nothing)
    return f"usage database {describe(url)}: schema up to date"


def run_usage(settings: Settings, start: date | None, end: date | None, by_day: bool) -> str:
    """Every key's usage from `start` to `end` (UTC days, both included; default: this month) as a table."""
    today = utc_now().date()
    first = start or today.replace(day=1)
    last = end or today
    midnight = datetime.min.time()

    async def read(store: UsageStore) -> tuple[list[KeyUsage], dict[str, float]]:
        lines = await store.report(datetime.combine(first, midnight), datetime.combine(last + timedelta(days=1),
                                   midnight), by_day=by_day)
        return lines, await store.quotas()

    lines, overrides = _with_store(settings, read)
    rows = [
        [line.key, *([line.day.isoformat()] if line.day else []), str(line.sessions), f"{line.audio_seconds:.1f}",
         _quota(overrides.get(line.key, settings.quota_audio_s))]
        for line in lines
    ]
    header = ["key", *(["day"] if by_day else []), "sessions", "audio_s", "quota_s/month"]
    return f"usage from {first} to {last} (UTC)\n" + format_table(header, rows)


def run_quota(settings: Settings, key: str | None, audio_seconds: float | None, *, remove: bool = False) -> str:
    """Set (or remove) a key's own quota, then list every key's own quota."""

    async def work(store: UsageStore) -> dict[str, float]:
        if key is not None and (remove or audio_seconds is not None):
            await store.set_quota(key, None if remove else audio_seconds)
        return await store.quotas()

    overrides = _with_store(settings, work)
    rows = [[name, _quota(seconds)] for name, seconds in sorted(overrides.items())]
    return f"default: {_quota(settings.quota_audio_s)} per key per month\n" + format_table(
        ["key", "quota_s/month"], rows
    )


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _quota(seconds: float) -> str:
    return "unlimited" if seconds <= 0 else f"{seconds:g}"
