from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support import ServerThread
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.settings import Settings

logging.getLogger("faster_whisper").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def local_engine_server() -> Iterator[ServerThread]:
    """One real gateway with the local engine for the whole test session (the model loads once)."""
    server = ServerThread(Settings(port=0, max_sessions=8), LocalEngine()).start()
    assert server.gateway.ready, server.gateway.start_error
    yield server
    server.stop()
