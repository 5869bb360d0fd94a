"""PostgreSQL, for several gateways: a real throwaway cluster (the `postgres` fixture), real servers on loopback.

Two gateways on one database hold one quota and write at once without losing or doubling a record; the
database stopped and restarted mid-run loses nothing; the figures match the audio each session streamed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import websockets

from tests.fakes import EchoEngine
from tests.support import LISTEN, REALTIME, STT, ServerThread, until
from tests.usage.common import (
    KEY,
    KEY_ID,
    OTHER,
    OTHER_ID,
    audio_seconds,
    get_usage,
    read_all,
    sample,
    send_all,
    silence,
    stored_rows,
    stream,
    until_rows,
    usage_settings,
)
from tests.usage.postgres import PostgresCluster
from voxrelay.usage.database import create_engine, upgrade


@pytest.fixture
def gateways(pg_url: str) -> Iterator[tuple[ServerThread, ServerThread]]:
    """Two gateways on one database, each key held to 3 s a month."""
    pair = tuple(ServerThread(usage_settings(pg_url, quota_audio_s=3.0), EchoEngine()).start() for _ in range(2))
    yield pair  # type: ignore[misc]
    for server in pair:
        server.stop()


async def test_two_gateways_on_one_database_hold_one_quota_and_write_at_once(
    gateways: tuple[ServerThread, ServerThread], pg_url: str
) -> None:
    a, b = gateways
    await stream(a, STT, 2.0)
    await until(lambda: b.gateway.usage.used(KEY_ID) >= 1.99)  # b read what a wrote
    messages, ws = await stream(b, STT, 2.0, stop=False)
    assert ws.close_code == 1008 and messages[-1]["code"] == "quota_exceeded"
    await until(lambda: a.gateway.usage.used(KEY_ID) >= 2.99)
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(STT.url(a), additional_headers=STT.headers(KEY)):
            pass
    assert refused.value.response.status_code == 429

    # Another key (2.5 s of its 3 s), on both gateways and every endpoint at once.
    lengths = {(a, STT): 0.2, (a, LISTEN): 0.3, (a, REALTIME): 0.4, (b, STT): 0.6, (b, LISTEN): 0.5,
               (b, REALTIME): 0.5}
    await asyncio.gather(*(stream(server, endpoint, seconds, key=OTHER)
                           for (server, endpoint), seconds in lengths.items()))
    # Each gateway writes its own sessions within a flush (0.5 s here); then either reports them all.
    rows = await until_rows(pg_url, lambda rows: len(rows) == 8 and all(r["outcome"] for r in rows))
    body = (await get_usage(b)).json()  # loopback: every key
    assert audio_seconds(body, KEY_ID) == pytest.approx(3.0, abs=0.15)
    assert audio_seconds(body, OTHER_ID) == pytest.approx(sum(lengths.values()), abs=0.01)
    assert len({r["id"] for r in rows}) == 8
    other = sorted(r["audio_seconds"] for r in rows if r["key"] == OTHER_ID)
    assert other == [pytest.approx(s, abs=0.5) for s in sorted(lengths.values())]  # within 0.5 s per session
    assert other == [pytest.approx(s, abs=0.01) for s in sorted(lengths.values())]  # and in fact exact
    assert {r["gateway"] for r in rows} == {a.gateway.usage.gateway_id, b.gateway.usage.gateway_id}


async def test_the_database_stopped_and_restarted_mid_run_loses_no_record(
    postgres: PostgresCluster, pg_url: str
) -> None:
    server = ServerThread(usage_settings(pg_url), EchoEngine()).start()
    try:
        async with websockets.connect(STT.url(server), additional_headers=STT.headers(KEY)) as ws:
            await STT.start(ws)
            await send_all(ws, silence(STT, 1.0))
            await until_rows(pg_url, lambda rows: len(rows) == 1 and rows[0]["audio_seconds"] >= 1.0)
            postgres.stop()
            try:
                await send_all(ws, [*silence(STT, 1.0), STT.stop])
                messages = await read_all(ws, STT)
                assert messages[-1]["type"] == "stopped" and ws.close_code == 1000  # the session went on
                for seconds in (0.6, 0.3):
                    messages, closed = await stream(server, STT, seconds, key=OTHER)
                    assert closed.close_code == 1000
                await until(lambda: sample(server, "voxrelay_usage_db_errors_total", operation="write") >= 1, 30)
                assert server.gateway.usage.pending == 3
            finally:
                postgres.start()
        rows = await until_rows(pg_url, lambda rows: len(rows) == 3 and all(r["outcome"] for r in rows))
        assert [r["audio_seconds"] for r in rows] == [pytest.approx(s, abs=0.01) for s in (2.0, 0.6, 0.3)]
        assert [r["outcome"] for r in rows] == ["normal"] * 3
        await until(lambda: server.gateway.usage.pending == 0)
    finally:
        server.stop()
    assert len(await stored_rows(pg_url)) == 3


async def test_gateways_starting_together_migrate_a_fresh_database_once(pg_url: str) -> None:
    engines = [create_engine(pg_url) for _ in range(3)]
    try:
        assert await asyncio.gather(*(upgrade(engine) for engine in engines)) == ["0001"] * 3
    finally:
        for engine in engines:
            await engine.dispose()
