"""The usage tables: one row per session, one row per key with a quota of its own.

Times are naive UTC (`utc_now`): SQLite keeps no time zone, so both databases store the same thing.
No transcript text is stored, ever: a row says who, where, when and how many audio seconds.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Float, Index, MetaData, String, Table

__all__ = ["metadata", "quotas", "usage_sessions", "utc_now"]

metadata = MetaData()

usage_sessions = Table(
    "usage_sessions",
    metadata,
    # The session id the logs name: a live session's row is rewritten in place (an upsert), so a
    # retried or repeated write never adds a second record.
    Column("id", String(64), primary_key=True),
    Column("key", String(64), nullable=False),  # fingerprint (`key-1a2b3c4d`), or `anonymous` with auth off
    Column("endpoint", String(32), nullable=False),
    Column("engine", String(32), nullable=False),
    Column("model", String(128), nullable=False),
    Column("gateway", String(64), nullable=False),  # the process that served it: its own figures count live
    Column("started_at", DateTime(), nullable=False),
    Column("ended_at", DateTime(), nullable=True),  # NULL while it runs (or if its gateway was killed)
    Column("updated_at", DateTime(), nullable=False),
    Column("audio_seconds", Float(), nullable=False),
    Column("outcome", String(32), nullable=True),  # normal, client_gone, drained, quota, an error code
    Index("ix_usage_sessions_key_started", "key", "started_at"),
    Index("ix_usage_sessions_started", "started_at"),
)

quotas = Table(
    "quotas",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("audio_seconds", Float(), nullable=False),  # per calendar month (UTC); 0 = unlimited
    Column("updated_at", DateTime(), nullable=False),
)


def utc_now() -> datetime:
    """Now, as the tables store it: naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
