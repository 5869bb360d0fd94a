"""The usage database: its URL, an async engine, and the schema brought to this code's head by Alembic.

`VOXRELAY_DATABASE_URL` is a SQLAlchemy URL; empty means a SQLite file `usage.db` in
`VOXRELAY_DATA_DIR` (empty: the platform's user data folder), created on first use. Migrations
run at start-up and by `voxrelay db upgrade`; a database whose schema is newer than this code's
migrations is refused (`SchemaTooNew`) rather than written with the wrong idea of its tables.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from voxrelay.settings import Settings

__all__ = ["SchemaTooNew", "create_engine", "database_url", "describe", "upgrade"]

log = logging.getLogger("voxrelay.usage")
# Alembic says "Context impl SQLiteImpl." and the like at every check; the migration itself is logged above.
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)

_MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer voxrelay than this one."""


def database_url(settings: Settings) -> str:
    """The configured URL, or the default SQLite file (its folder is created here)."""
    if settings.database_url:
        return settings.database_url
    folder = settings.data_dir or Path(platformdirs.user_data_dir("voxrelay", appauthor=False))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a read-only root: the meter logs and counts each failed write; sessions go on
        log.error("cannot create the usage data folder %s (%s): set VOXRELAY_DATA_DIR or VOXRELAY_DATABASE_URL",
                  folder, exc)
    return f"sqlite+aiosqlite:///{folder / 'usage.db'}"


def describe(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return make_url(url).render_as_string(hide_password=True)


def create_engine(url: str, timeout_s: float = 5.0) -> AsyncEngine:
    """An async engine whose waits are bounded: a slow or absent database fails a write, never hangs it."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args["timeout"] = timeout_s  # how long a writer waits for another's lock
    elif parsed.get_driver_name() == "asyncpg":
        connect_args["timeout"] = timeout_s
        connect_args["command_timeout"] = timeout_s
    engine = create_async_engine(url, connect_args=connect_args, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers (GET /v1/usage) do not wait for the flush's writes, and several gateways on one
    # host may share the file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def _upgrade_on(connection: Connection) -> str | None:
    if connection.dialect.name == "postgresql":
        # Gateways starting together on one database migrate one at a time (released at commit).
        connection.execute(text("SELECT pg_advisory_xact_lock(7419315)"))
    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(connection).get_current_revision()
    head = script.get_current_head()
    if current is not None and current != head:
        known = {revision.revision for revision in script.walk_revisions()}
        if current not in known:
            raise SchemaTooNew(
                f"the usage database's schema (revision {current}) is newer than this voxrelay knows "
                f"(revision {head}): upgrade voxrelay, or point VOXRELAY_DATABASE_URL at another database"
            )
    if current != head:
        log.info("usage database: migrating the schema from revision %s to %s", current, head)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return head


async def upgrade(engine: AsyncEngine) -> str | None:
    """Bring the schema to this code's head (a no-op when it is there); returns the revision.

    Raises:
        SchemaTooNew: the database has a revision this code does not know.
    """
    async with engine.begin() as connection:
        return await connection.run_sync(_upgrade_on)
