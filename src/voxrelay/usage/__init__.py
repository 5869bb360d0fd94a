"""Usage metering and quotas per key, persisted (docs/usage.md).

`meter.Meter` adds up each session's audio seconds in memory and writes them in the background
(`store.UsageStore`, SQLAlchemy async: SQLite by default, PostgreSQL for several gateways);
`session.SessionUsage` is one live session's part, driven by the connection runner; the schema
(`schema.py`) is migrated by Alembic (`database.py`, `migrations/`); `api.py` serves
`GET /v1/usage` and the quota overrides; `commands.py` is `voxrelay db upgrade`/`usage`/`quota`.
"""
