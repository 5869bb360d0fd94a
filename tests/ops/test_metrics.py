"""`/metrics` and `/readyz`: a real server with a scripted engine, read as Prometheus would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import QueuedStream
from tests.support import ServerThread, until
from voxrelay.engines import base
from voxrelay.engines.base import Engine, EngineStream, StreamConfig
from voxrelay.engines.local.scheduler import FINAL, INTERIM, InferenceScheduler
from voxrelay.ops.metrics import Metrics
from voxrelay.settings import Settings

LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


class _ScriptedStream(QueuedStream):
    """An interim on the first audio; a final, then the end, on close."""

    def __init__(self) -> None:
        super().__init__()
        self._audio = False

    async def send_audio(self, audio: object) -> None:
        if not self._audio:
            self._audio = True
            self.emit(base.InterimResult("hello", 0.0, 0.5))

    async def finalize(self) -> None:
        pass

    async def close(self) -> None:
        self.emit(base.FinalResult("hello world", 0.0, 1.0, True))
        self.end()


class _ScriptedEngine(Engine):
    name = "scripted"

    async def start(self) -> None:
        self.started = True

    async def open(self, config: StreamConfig) -> EngineStream:
        return _ScriptedStream()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    server = ServerThread(Settings(port=0, max_sessions=2), _ScriptedEngine()).start()
    yield server
    server.stop()


async def scrape(server: ServerThread) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    async with httpx.AsyncClient() as client:
        response = await client.get(server.http("/metrics"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name != "voxrelay_worker_up"  # one gateway: its own registry, as before `--workers`
        for sample in family.samples:
            assert "worker" not in sample.labels
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until_no_sessions(server: ServerThread) -> None:
    await until(lambda: not server.gateway.sessions)


async def one_session(server: ServerThread, seconds: float = 1.0) -> list[dict]:  # type: ignore[type-arg]
    messages = []
    async with websockets.connect(server.url()) as ws:
        await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16}))
        await ws.send(b"\0\0" * int(16000 * seconds))
        await ws.send(json.dumps({"action": "stop"}))
        async for raw in ws:
            messages.append(json.loads(raw))
    return messages


async def test_a_session_is_counted(server: ServerThread) -> None:
    before = await scrape(server)
    messages = await one_session(server, seconds=1.5)
    assert [m["type"] for m in messages][-2:] == ["final_transcript", "stopped"]
    await until_no_sessions(server)  # the server counts the session after the client saw the close
    after = await scrape(server)

    engine = {"engine": "scripted"}
    stopped = {"engine": "scripted", "endpoint": "stt-stream", "outcome": "stopped"}
    assert value(after, "voxrelay_sessions_total", **stopped) == value(before, "voxrelay_sessions_total", **stopped) + 1
    audio = {"engine": "scripted", "endpoint": "stt-stream"}
    assert value(after, "voxrelay_audio_seconds_total", **audio) - value(
        before, "voxrelay_audio_seconds_total", **audio
    ) == pytest.approx(1.5)
    for histogram in ("voxrelay_first_interim_seconds", "voxrelay_final_after_stop_seconds"):
        assert value(after, f"{histogram}_count", **audio) == value(before, f"{histogram}_count", **audio) + 1
    assert value(after, "voxrelay_active_sessions", **engine) == 0
    assert value(after, "voxrelay_max_sessions") == 2
    assert ("process_cpu_seconds_total", ()) in after


async def test_active_sessions_and_readyz_follow_capacity(server: ServerThread) -> None:
    async with httpx.AsyncClient() as client:
        ready = await client.get(server.http("/readyz"))
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        async with websockets.connect(server.url()) as a, websockets.connect(server.url()) as b:
            for ws in (a, b):  # `ready` is sent once the session holds a slot
                await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16}))
                assert json.loads(await ws.recv())["type"] == "ready"
            samples = await scrape(server)
            assert value(samples, "voxrelay_active_sessions", engine="scripted") == 2
            full = await client.get(server.http("/readyz"))
            assert full.status_code == 503 and full.json()["reasons"] == ["at_capacity"]
            assert value(await scrape(server), "voxrelay_ready") == 0

            refused = {"engine": "scripted", "endpoint": "stt-stream", "outcome": "refused"}
            before = value(samples, "voxrelay_sessions_total", **refused)
            with pytest.raises(websockets.InvalidStatus) as refusal:  # refused before the upgrade
                async with websockets.connect(server.url()):
                    pass
            assert refusal.value.response.status_code == 503
            after = await scrape(server)
            assert value(after, "voxrelay_sessions_total", **refused) == before + 1
            assert value(after, "voxrelay_errors_total", endpoint="stt-stream", code="limit_exceeded") >= 1


async def test_readyz_says_draining(server: ServerThread) -> None:
    drainer = server.gateway.drainer
    drainer.draining = True  # what POST /admin/drain sets first (without ending the test server)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(server.http("/readyz"))
            assert response.status_code == 503 and "draining" in response.json()["reasons"]
            assert (await client.get(server.http("/healthz"))).status_code == 200  # liveness is unaffected
    finally:
        drainer.draining = False


def test_metrics_of_two_apps_do_not_clash() -> None:
    first = Metrics("a", lambda: 1)
    second = Metrics("a", lambda: 3)
    assert b'voxrelay_active_sessions{engine="a"} 1.0' in first.render()
    assert b'voxrelay_active_sessions{engine="a"} 3.0' in second.render()


def test_scheduler_timings_feed_the_engine_histograms() -> None:
    metrics = Metrics("local", lambda: 0, process=False)

    async def run_jobs() -> None:
        scheduler = InferenceScheduler(
            workers=1, on_timing=lambda p, t: metrics.observe_job("final" if p == FINAL else "interim", t.wait, t.run)
        )
        try:
            await scheduler.submit(lambda: 1, priority=FINAL)
            await scheduler.submit(lambda: 2, priority=INTERIM)
        finally:
            await asyncio.to_thread(scheduler.close)

    asyncio.run(run_jobs())
    text = metrics.render().decode()
    for name in ("voxrelay_engine_queue_wait_seconds", "voxrelay_engine_decode_seconds"):
        assert f'{name}_count{{kind="final"}} 1.0' in text
        assert f'{name}_count{{kind="interim"}} 1.0' in text


def test_counters_for_other_components_are_exposed() -> None:
    metrics = Metrics("deepgram", lambda: 0, process=False)
    metrics.upstream_reconnect("ok")
    metrics.token_minted()
    metrics.token_refused("expired")
    text = metrics.render().decode()
    assert 'voxrelay_upstream_reconnects_total{engine="deepgram",result="ok"} 1.0' in text
    assert 'voxrelay_tokens_minted_total{kind="session"} 1.0' in text
    assert 'voxrelay_tokens_refused_total{reason="expired"} 1.0' in text
