"""Usage records in the default database, SQLite: the schema, one record per session on every endpoint, the
figures against the audio streamed, live writes, `GET /v1/usage` and `voxrelay usage`.

Real servers on loopback with the raw-audio echo engine; real SQLite files in the test's tmp folder.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timezone
from pathlib import Path

import httpx
import pytest
import websockets

from tests.fakes import EchoEngine, FileCountingEngine
from tests.processes import SRC
from tests.support import ENDPOINTS, STT, Endpoint, ServerThread, encode_file, until
from tests.support import silence as quiet
from tests.usage.common import (
    ADMIN,
    KEY,
    KEY_ID,
    OTHER,
    OTHER_ID,
    audio_seconds,
    get_usage,
    read_all,
    send_all,
    silence,
    stream,
    usage_settings,
)
from voxrelay.cli import main
from voxrelay.gateway.app import create_app
from voxrelay.settings import Settings
from voxrelay.usage.database import SchemaTooNew, create_engine, database_url, upgrade


def utc_today() -> date:
    return datetime.now(timezone.utc).date()  # the reports' days are UTC days


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(usage_settings(sqlite_url(tmp_path / "usage.db")), EchoEngine()).start()
    yield server
    server.stop()


def rows(path: Path) -> list[dict[str, object]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM usage_sessions ORDER BY started_at")]


# The schema.


def test_db_upgrade_creates_the_schema_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VOXRELAY_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0  # at head already: nothing to do
    assert "schema up to date" in capsys.readouterr().out
    with sqlite3.connect(tmp_path / "data" / "usage.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"usage_sessions", "quotas", "alembic_version"} <= tables
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]


def test_a_newer_schema_is_refused_by_the_cli_and_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "usage.db"
    monkeypatch.setenv("VOXRELAY_DATABASE_URL", sqlite_url(path))
    assert main(["db", "upgrade"]) == 0
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    assert main(["db", "upgrade"]) == 2
    assert "newer than this voxrelay knows" in capsys.readouterr().err

    async def start() -> None:
        engine = create_engine(sqlite_url(path))
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    with pytest.raises(SchemaTooNew, match="revision 9999"):
        asyncio.run(start())

    async def app_start() -> None:  # the gateway's start-up (its lifespan) stops on it too
        app = create_app(Settings(port=0, database_url=sqlite_url(path)), EchoEngine())
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(SchemaTooNew, match="newer than this voxrelay knows"):
        asyncio.run(app_start())


def test_the_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(port=0, data_dir=tmp_path / "fresh")
    assert database_url(settings) == sqlite_url(tmp_path / "fresh" / "usage.db")
    server = ServerThread(settings, EchoEngine()).start()
    server.stop()
    assert (tmp_path / "fresh" / "usage.db").is_file()


# Records.


EXPECTED_OUTCOME = {"stt-stream": "normal", "v1-listen": "normal", "v1-realtime": "client_gone"}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_each_session_is_one_record_with_the_audio_streamed(
    server: ServerThread, endpoint: Endpoint, tmp_path: Path
) -> None:
    for seconds in (1.3, 2.7):
        await stream(server, endpoint, seconds)
    response = await get_usage(server)  # loopback: an admin's view
    assert response.status_code == 200, response.text
    assert audio_seconds(response.json(), KEY_ID) == pytest.approx(4.0, abs=0.5)
    records = rows(tmp_path / "usage.db")
    assert [r["audio_seconds"] for r in records] == [pytest.approx(1.3, abs=0.5), pytest.approx(2.7, abs=0.5)]
    for record in records:
        assert record["key"] == KEY_ID
        assert record["endpoint"] == endpoint.label
        assert record["engine"] == "echo" and record["model"]
        assert record["outcome"] == EXPECTED_OUTCOME[endpoint.label]
        assert record["started_at"] <= record["ended_at"]
    # No transcript text is stored: the echo engine's finals say "heard N bytes".
    assert b"heard" not in (tmp_path / "usage.db").read_bytes()


async def test_a_live_session_is_written_while_it_runs(server: ServerThread, tmp_path: Path) -> None:
    async with websockets.connect(STT.url(server), additional_headers=STT.headers(KEY)) as ws:
        await STT.start(ws)
        await send_all(ws, silence(STT, 2.0))
        # Written by the background flush (every 0.5 s here), not by the session's end.
        await until(lambda: any(r["ended_at"] is None and r["audio_seconds"] >= 1.9 for r in rows(tmp_path / "usage.db")))
    await until(lambda: bool(rows(tmp_path / "usage.db")) and rows(tmp_path / "usage.db")[0]["outcome"] is not None)
    assert len(rows(tmp_path / "usage.db")) == 1
    assert rows(tmp_path / "usage.db")[0]["outcome"] == "client_gone"


# GET /v1/usage and `voxrelay usage`.


async def test_a_key_sees_only_its_own_usage_and_an_admin_every_key(server: ServerThread) -> None:
    await stream(server, STT, 1.0, key=KEY)
    await stream(server, STT, 2.0, key=OTHER)
    own = (await get_usage(server, key=KEY)).json()
    assert [entry["key"] for entry in own["keys"]] == [KEY_ID]
    assert own["keys"][0]["sessions"] == 1 and own["keys"][0]["audio_seconds"] == pytest.approx(1.0, abs=0.5)
    assert own["from"] == utc_today().replace(day=1).isoformat() and own["to"] == utc_today().isoformat()
    for admin in (ADMIN, None):  # the admin key, or a loopback peer without credentials
        every = (await get_usage(server, key=admin)).json()
        assert audio_seconds(every, KEY_ID) == pytest.approx(1.0, abs=0.5)
        assert audio_seconds(every, OTHER_ID) == pytest.approx(2.0, abs=0.5)
    assert (await get_usage(server, key="not-a-key")).status_code == 401
    today = utc_today().isoformat()
    by_day = (await get_usage(server, f"?from={today}&to={today}&group_by=day", key=KEY)).json()
    assert by_day["keys"][0]["days"] == [{"day": today, "sessions": 1, "audio_seconds": pytest.approx(1.0, abs=0.5)}]
    assert (await get_usage(server, "?from=2026-13-01")).status_code == 400
    assert (await get_usage(server, "?from=2026-02-01&to=2026-01-01")).status_code == 400
    past = (await get_usage(server, "?from=2020-01-01&to=2020-01-31", key=KEY)).json()
    assert past["keys"] == [{"key": KEY_ID, "sessions": 0, "audio_seconds": 0.0, "quota_audio_s": 0.0}]


async def test_a_remote_caller_needs_the_admin_key_to_see_every_key(server: ServerThread) -> None:
    await stream(server, STT, 1.0, key=KEY)
    await stream(server, STT, 1.0, key=OTHER)
    remote = {"X-Forwarded-For": "198.51.100.7"}  # through a local reverse proxy: uvicorn takes this address
    async with httpx.AsyncClient() as client:
        url = server.http("/v1/usage")
        anonymous = await client.get(url, headers=remote)
        assert anonymous.status_code == 401, anonymous.text  # not loopback any more, and no key
        own = (await client.get(url, headers={**remote, "Authorization": f"Bearer {KEY}"})).json()
        assert [entry["key"] for entry in own["keys"]] == [KEY_ID]
        every = (await client.get(url, headers={**remote, "Authorization": f"Bearer {ADMIN}"})).json()
    assert {KEY_ID, OTHER_ID} <= {entry["key"] for entry in every["keys"]}


def test_voxrelay_usage_prints_every_key_as_a_table(
    server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(stream(server, STT, 1.5, key=KEY))
    asyncio.run(stream(server, STT, 0.5, key=OTHER))
    asyncio.run(until(lambda: len([r for r in rows(tmp_path / "usage.db") if r["outcome"]]) == 2))
    monkeypatch.setenv("VOXRELAY_DATABASE_URL", sqlite_url(tmp_path / "usage.db"))
    assert main(["usage"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["key", "sessions", "audio_s", "quota_s/month"]
    table = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert table[KEY_ID] == ["1", "1.5", "unlimited"]
    assert table[OTHER_ID] == ["1", "0.5", "unlimited"]
    assert main(["usage", "--group-by", "day"]) == 0
    assert utc_today().isoformat() in capsys.readouterr().out


async def test_file_transcriptions_are_recorded_and_count_toward_the_quota(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    server = ServerThread(usage_settings(sqlite_url(path), quota_audio_s=3.0), FileCountingEngine()).start()
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            openai = await client.post(server.http("/v1/audio/transcriptions"), headers={"Authorization": f"Bearer {KEY}"},
                                       data={"model": "whisper-1"},
                                       files={"file": ("a.wav", encode_file(quiet(2.0), "wav"))})
            assert openai.status_code == 200, openai.text
            deepgram = await client.post(server.http("/v1/listen"), content=encode_file(quiet(1.5), "wav"),
                                         headers={"Authorization": f"Token {KEY}", "Content-Type": "audio/wav"})
            assert deepgram.status_code == 200, deepgram.text
            # 3.5 s of the key's 3 s: the next request is refused.
            refused = await client.post(server.http("/v1/listen"), content=encode_file(quiet(0.5), "wav"),
                                        headers={"Authorization": f"Token {KEY}", "Content-Type": "audio/wav"})
            assert refused.status_code == 429
        await until(lambda: len(rows(path)) == 2)  # written at the next flush
        records = rows(path)
        assert [(r["endpoint"], r["outcome"], r["key"]) for r in records] == [
            ("v1-audio-transcriptions", "normal", KEY_ID), ("v1-listen-prerecorded", "normal", KEY_ID)]
        assert [r["audio_seconds"] for r in records] == [pytest.approx(2.0, abs=0.05), pytest.approx(1.5, abs=0.05)]
        assert b"Bytes" not in path.read_bytes()  # the fake's transcripts say "Bytes A-B."
    finally:
        server.stop()


async def test_a_drained_session_is_recorded_as_drained(server: ServerThread, tmp_path: Path) -> None:
    async with websockets.connect(STT.url(server), additional_headers=STT.headers(KEY)) as ws:
        await STT.start(ws)
        await send_all(ws, silence(STT, 0.8))
        await until(lambda: server.gateway.usage.used(KEY_ID) >= 0.79)  # every frame reached the engine
        async with httpx.AsyncClient() as client:
            drain = asyncio.create_task(client.post(server.http("/admin/drain?wait=true"), timeout=30))
            messages = await read_all(ws, STT)
            assert (await drain).status_code == 200
    assert messages[-1]["type"] == "stopped" and ws.close_code == 1000
    await until(lambda: bool(rows(tmp_path / "usage.db")) and rows(tmp_path / "usage.db")[0]["outcome"] is not None)
    [record] = rows(tmp_path / "usage.db")
    assert record["outcome"] == "drained" and record["audio_seconds"] == pytest.approx(0.8, abs=0.01)


def test_the_cli_says_when_the_database_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the socket is closed
    monkeypatch.setenv("VOXRELAY_DATABASE_URL", f"postgresql+asyncpg://postgres@127.0.0.1:{port}/nowhere")
    assert main(["usage"]) == 2
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.count("voxrelay: the usage database cannot be reached") == 2, err
    assert "Traceback" not in err


def test_voxrelay_serve_refuses_a_newer_schema_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "usage.db"
    asyncio.run(_migrate(sqlite_url(path)))
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    cli = Path(sys.executable).with_name("voxrelay")
    env = {**os.environ, "VOXRELAY_DATABASE_URL": sqlite_url(path), "PYTHONPATH": str(SRC), "DEEPGRAM_API_KEY": "k"}
    done = subprocess.run([str(cli), "serve", "--engine", "deepgram", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "voxrelay: the usage database's schema (revision 9999) is newer than this voxrelay knows (revision 0001): "
        "upgrade voxrelay, or point VOXRELAY_DATABASE_URL at another database"]
    assert "Traceback" not in done.stderr


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
