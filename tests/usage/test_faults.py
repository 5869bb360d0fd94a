"""Faults: a slow (locked) database, an unreachable one, and a gateway killed mid-session and restarted.

Sessions go on while the database is away; records wait in memory (bounded) and are written once it is back;
every failure is logged once per outage and counted in /metrics; no record is lost or doubled. Real servers
on loopback, real SQLite files, a real `voxrelay serve` process killed with SIGKILL, and for the restart a real
PostgreSQL too (the `postgres` fixture's throwaway cluster).
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest
import websockets

from tests.fakes import EchoEngine
from tests.processes import GatewayProcess
from tests.support import STT, ServerThread, until
from tests.usage.common import KEY, KEY_ID, sample, stream, until_rows, usage_settings
from tests.usage.postgres import PostgresCluster
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script
from voxrelay.usage.database import create_engine, upgrade
from voxrelay.usage.meter import Meter
from voxrelay.usage.schema import utc_now
from voxrelay.usage.store import SessionRecord, UsageStore


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def lag_samples_over(server: ServerThread, seconds: float) -> float:
    """Event-loop timer wake-ups later than `seconds` (voxrelay_event_loop_lag_seconds)."""
    total = sample(server, "voxrelay_event_loop_lag_seconds_count")
    return total - sample(server, "voxrelay_event_loop_lag_seconds_bucket", le=str(seconds))


async def test_a_locked_database_delays_no_session_and_loses_no_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.db"
    server = ServerThread(usage_settings(sqlite_url(path)), EchoEngine()).start()
    try:
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # every write now waits for the busy timeout, then fails
        try:
            # A database wait on the event loop would stall it for the busy timeout (5 s); scheduling noise
            # on a shared test machine stays far below 1 s.
            lag_before = lag_samples_over(server, 1.0)
            for seconds in (1.0, 1.5, 2.0):
                began = time.monotonic()
                messages, ws = await stream(server, STT, seconds)
                assert ws.close_code == 1000 and messages[-1]["type"] == "stopped"
                assert time.monotonic() - began < 2.0, "a session waited for the database"
            await until(lambda: sample(server, "voxrelay_usage_db_errors_total", operation="write") >= 2, 30)
            assert server.gateway.usage.pending == 3
            assert lag_samples_over(server, 1.0) == lag_before, "the event loop was blocked"
        finally:
            lock.rollback()
            lock.close()
        rows = await until_rows(sqlite_url(path), lambda rows: len(rows) == 3 and all(r["outcome"] for r in rows))
        assert [r["audio_seconds"] for r in rows] == [pytest.approx(s, abs=0.01) for s in (1.0, 1.5, 2.0)]
        await until(lambda: server.gateway.usage.pending == 0)
    finally:
        server.stop()
    failures = [r for r in caplog.records if r.name == "voxrelay.usage" and "write failed" in r.getMessage()]
    assert len(failures) == 1, "logged once per outage, not at every attempt"
    assert any("works again" in r.getMessage() for r in caplog.records if r.name == "voxrelay.usage")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once the socket is closed


async def test_an_unreachable_database_keeps_sessions_and_quotas_going_with_a_bounded_buffer() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nowhere"
    server = ServerThread(usage_settings(url, usage_buffer=10, quota_audio_s=3.0), EchoEngine()).start()
    try:
        assert server.gateway.ready  # the gateway started without its database
        for _ in range(12):
            messages, ws = await stream(server, STT, 0.2)
            assert ws.close_code == 1000, messages
        assert server.gateway.usage.pending == 10
        assert sample(server, "voxrelay_usage_records_dropped_total") == 2
        assert sample(server, "voxrelay_usage_pending_records") == 10
        assert sample(server, "voxrelay_usage_db_errors_total", operation="migrate") >= 1
        # The quota holds on the figures this gateway knows: 2.4 s used, 0.6 s left.
        messages, ws = await stream(server, STT, 2.0)
        assert ws.close_code == 1008 and messages[-1]["code"] == "quota_exceeded"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(STT.url(server), additional_headers=STT.headers(KEY)):
                pass
        assert refused.value.response.status_code == 429
        assert server.gateway.usage.used(KEY_ID) == pytest.approx(3.0, abs=0.01)
    finally:
        server.stop()


FRAME = b"\1\0" * 8000  # 0.5 s of 16 kHz linear16


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "usage.db")
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database()


async def test_a_gateway_killed_mid_session_loses_at_most_a_flush_and_doubles_nothing(any_url: str) -> None:
    env = {"VOXRELAY_DATABASE_URL": any_url, "VOXRELAY_USAGE_FLUSH_S": "1"}
    async with FakeDeepgram(api_key="fake-key", default=Script(final_every_s=1.0)) as fake:
        gateway = await GatewayProcess.start(fake.url, env)
        try:
            ws = await websockets.connect(gateway.url("/stt-stream"))
            await ws.send(json.dumps({"action": "configure", "audio_format": {"encoding": "linear16",
                                                                              "sample_rate": 16000}}))
            assert json.loads(await ws.recv())["type"] == "ready"
            for _ in range(6):
                await ws.send(FRAME)
            # The live session's figure is written while it runs...
            await until_rows(any_url, lambda rows: len(rows) == 1 and rows[0]["audio_seconds"] >= 3.0)
            for _ in range(2):
                await ws.send(FRAME)
            await gateway.kill()  # ...so a SIGKILL loses at most what came after the last write
        finally:
            await gateway.kill()
        rows = await until_rows(any_url, lambda rows: len(rows) == 1)
        killed = rows[0]
        assert 3.0 <= killed["audio_seconds"] <= 4.0 and 4.0 - killed["audio_seconds"] <= 5.0
        assert killed["ended_at"] is None and killed["outcome"] is None

        restarted = await GatewayProcess.start(fake.url, env)
        try:
            async with websockets.connect(restarted.url("/stt-stream")) as ws:
                await ws.send(json.dumps({"action": "configure", "audio_format": {"encoding": "linear16",
                                                                                  "sample_rate": 16000}}))
                for _ in range(2):
                    await ws.send(FRAME)
                await ws.send(json.dumps({"action": "stop"}))
                messages = [json.loads(raw) async for raw in ws]
                assert messages[-1]["type"] == "stopped"
            assert await restarted.terminate() == 0
        finally:
            await restarted.kill()
        rows = await until_rows(any_url, lambda rows: len(rows) == 2)
        assert rows[0] == killed, "the killed session's record is neither lost nor doubled"
        assert rows[1]["audio_seconds"] == pytest.approx(1.0, abs=0.01) and rows[1]["outcome"] == "normal"
        assert {r["key"] for r in rows} == {"anonymous"}

        # A gateway's sweep closes rows a killed gateway left open, once they are ABANDONED_AFTER old.
        engine = create_engine(any_url)
        try:
            store = UsageStore(engine)
            assert await store.close_abandoned(before=killed["updated_at"]) == 0  # written at that instant: live
            assert await store.close_abandoned(before=killed["updated_at"] + timedelta(milliseconds=1)) == 1
            closed, finished = await store.sessions()
        finally:
            await engine.dispose()
        assert closed == {**killed, "ended_at": killed["updated_at"], "outcome": "abandoned"}
        assert finished == rows[1]


logging.getLogger("asyncpg").setLevel(logging.WARNING)


async def test_a_gateway_closes_rows_left_open_by_a_killed_one_at_start_up(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "usage.db")
    engine = create_engine(url)
    try:
        await upgrade(engine)
        store = UsageStore(engine)
        began = utc_now()
        left = SessionRecord("killed-1", KEY_ID, "stt-stream", "echo", "m", "dead-gateway", began, 12.5)
        await store.write([left])
        # A gateway starting 11 minutes later (its clock moved): the row has not been written for 10 minutes.
        meter = Meter(usage_settings(url), engine, clock=lambda: utc_now() + timedelta(minutes=11))
        await meter.flush()
        [row] = await store.sessions()
        assert row["outcome"] == "abandoned" and row["ended_at"] == row["updated_at"]
        assert row["audio_seconds"] == 12.5
        # A live session (written a moment ago) is left alone by a gateway whose clock is now.
        await store.write([SessionRecord("live-1", KEY_ID, "stt-stream", "echo", "m", "other", began, 1.0)])
        await Meter(usage_settings(url), engine).flush()
        assert [r["outcome"] for r in await store.sessions()] == ["abandoned", None]
    finally:
        await engine.dispose()
