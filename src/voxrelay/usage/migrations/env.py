"""Alembic's environment: always run on a connection handed in by `voxrelay.usage.database`."""

from __future__ import annotations

from alembic import context

from voxrelay.usage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
