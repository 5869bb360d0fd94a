from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.usage.postgres import PostgresCluster, find_bindir


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL cluster for the session's PostgreSQL tests (each gets a database of its own)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server binaries are not installed (scripts/setup.sh --dev installs postgresql)")
    cluster = PostgresCluster(bindir)
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_url(postgres: PostgresCluster) -> str:
    return postgres.create_database()
