"""Alembic migrations of the usage tables (`voxrelay db upgrade`; also applied at start-up)."""
