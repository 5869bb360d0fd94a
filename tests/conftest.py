from __future__ import annotations

import gc
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from tests.support import ServerThread
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.settings import Settings

logging.getLogger("faster_whisper").setLevel(logging.WARNING)

# Every gateway the tests start (and the subprocesses they spawn) meters usage into a SQLite file in
# this folder, never into the user's data folder. Tests of the usage database give their own.
_DATA_DIR = tempfile.mkdtemp(prefix="voxrelay-test-data-")
os.environ["VOXRELAY_DATA_DIR"] = _DATA_DIR


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_DATA_DIR, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def usage_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each test module's gateways share a usage database of the module's own, not one with every other module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOXRELAY_DATA_DIR", str(tmp_path_factory.mktemp("usage-data")))
        yield


@pytest.fixture(scope="session")
def local_engine_server() -> Iterator[ServerThread]:
    """One real gateway with the local engine for the whole test session (the model loads once)."""
    server = ServerThread(Settings(port=0, max_sessions=8), LocalEngine()).start()
    assert server.gateway.ready, server.gateway.start_error
    yield server
    server.stop()


@pytest.fixture(autouse=True, scope="module")
def freeze_what_is_loaded() -> None:
    """Move what is alive when a module starts (modules, models, session servers) out of the collector's sight,
    so that collect_garbage_after_each_test looks at the module's own objects: ~10 ms, not ~160 ms."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def collect_garbage_after_each_test(freeze_what_is_loaded: None) -> Iterator[None]:
    """A socket or file a test leaves open warns when the garbage collector frees it: collect after each test, so
    the warning (an error here) names the test that leaked (or the one after it, when the leak was still held
    by a fixture), not whichever test the collector happened to run in."""
    yield
    gc.collect()
