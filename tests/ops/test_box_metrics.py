"""`BoxMetrics` in one process: two workers' metrics over real unix sockets, a missing and a stuck sibling."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from voxrelay.ops.box_metrics import BoxMetrics, socket_path
from voxrelay.ops.metrics import Metrics


@pytest.fixture
def runtime_dir() -> Iterator[Path]:
    # Short, like the supervisor's (a unix socket's path is limited to 107 bytes; pytest's tmp_path can be longer).
    directory = Path(tempfile.mkdtemp(prefix="vx-box-"))
    yield directory
    shutil.rmtree(directory)


def worker(index: int, directory: Path, sessions: int, timeout_s: float = 1.0) -> BoxMetrics:
    metrics = Metrics("deepgram", lambda: 0, process=False)
    for _ in range(sessions):
        metrics.session("stt-stream").closed("stopped", None)
    return BoxMetrics(index, 2, directory, metrics.render, timeout_s=timeout_s)


def sockets(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def stopped_and_up(text: bytes) -> tuple[dict[str, float], dict[str, float]]:
    stopped, up = {}, {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            if s.name == "voxrelay_sessions_total" and s.labels["outcome"] == "stopped":
                stopped[s.labels["worker"]] = s.value
            elif s.name == "voxrelay_worker_up":
                up[s.labels["worker"]] = s.value
    return stopped, up


async def test_each_worker_renders_both_and_a_stopped_one_is_marked_down(runtime_dir: Path) -> None:
    zero, one = worker(0, runtime_dir, 2), worker(1, runtime_dir, 3)
    await zero.start()
    await one.start()
    try:
        assert stopped_and_up(await zero.render()) == ({"0": 2.0, "1": 3.0}, {"0": 1.0, "1": 1.0})
        assert stopped_and_up(await one.render()) == ({"0": 2.0, "1": 3.0}, {"0": 1.0, "1": 1.0})
        await one.stop()
        assert sockets(runtime_dir) == ["worker-0.sock"]
        assert stopped_and_up(await zero.render()) == ({"0": 2.0}, {"0": 1.0, "1": 0.0})
    finally:
        await zero.stop()
        await one.stop()
    assert sockets(runtime_dir) == []


async def test_a_sibling_that_takes_the_connection_but_never_answers_is_left_out(runtime_dir: Path) -> None:
    accepted = asyncio.Event()

    async def stuck(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()  # until the scraping side gives up and closes
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_unix_server(stuck, path=str(socket_path(runtime_dir, 1)))
    zero = worker(0, runtime_dir, 1, timeout_s=0.2)
    try:
        assert stopped_and_up(await zero.render()) == ({"0": 1.0}, {"0": 1.0, "1": 0.0})
        assert accepted.is_set()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_socket_left_by_a_killed_worker_is_refused_and_replaced_by_its_successor(runtime_dir: Path) -> None:
    socket_path(runtime_dir, 1).touch()  # what a SIGKILLed worker leaves is a socket file; any stale file will do
    zero = worker(0, runtime_dir, 1)
    assert stopped_and_up(await zero.render())[1] == {"0": 1.0, "1": 0.0}
    socket_path(runtime_dir, 1).unlink()
    with socket.socket(socket.AF_UNIX) as dead:  # a socket file nobody listens on: connections are refused
        dead.bind(str(socket_path(runtime_dir, 1)))
    assert stopped_and_up(await zero.render())[1] == {"0": 1.0, "1": 0.0}
    successor = worker(1, runtime_dir, 4)
    await successor.start()  # over the stale socket file
    try:
        assert stopped_and_up(await zero.render()) == ({"0": 1.0, "1": 4.0}, {"0": 1.0, "1": 1.0})
    finally:
        await successor.stop()


async def test_without_its_socket_a_worker_still_answers_with_its_own_series(
    runtime_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    zero = worker(0, runtime_dir / ("x" * 120), 5)  # a path too long for a unix socket
    await zero.start()
    assert "cannot serve its metrics to the other workers" in caplog.text
    assert stopped_and_up(await zero.render()) == ({"0": 5.0}, {"0": 1.0, "1": 0.0})
    await zero.stop()
