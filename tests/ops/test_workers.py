"""`voxrelay serve --workers 2` as real processes on loopback against the fake Deepgram.

Sessions spread over both workers; a token minted by one worker is redeemed by the other, and only
once on the box; SIGTERM drains both with live sessions finishing; a killed worker is restarted.
`/metrics` on either worker shows both workers' series (labelled `worker`), and one that is stuck
or dead is left out and marked in `voxrelay_worker_up` until it answers again.
Each worker names itself in the `X-Voxrelay-Worker` header of every response and handshake.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.test_sigterm import FRAME, FRAMES, covered_bytes
from tests.processes import GatewayProcess
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

KEY = f"vx-test-{uuid.uuid4().hex}"
HEADERS = {"Authorization": f"Bearer {KEY}"}
CONFIGURE = json.dumps({"action": "configure", "audio_format": {"encoding": "linear16", "sample_rate": 16000}})
# Caps are per worker (16 sessions, 8 per key, 120 handshakes a minute by default): room for 40 sessions on one.
ENV = {"VOXRELAY_API_KEYS": KEY, "VOXRELAY_HANDSHAKES_PER_MINUTE": "0", "VOXRELAY_MAX_SESSIONS": "64",
       "VOXRELAY_MAX_SESSIONS_PER_KEY": "64"}
TRIES = 40  # connections until one lands on a given worker: the kernel picks each by a hash, 1 in 2


@pytest.fixture
async def box() -> AsyncIterator[GatewayProcess]:
    async with FakeDeepgram(api_key="fake-key", default=Script(final_every_s=1.0)) as fake:
        server = await GatewayProcess.start(fake.url, ENV, workers=2)
        try:
            yield server
        finally:
            await server.kill()  # SIGKILL the supervisor: its workers get SIGTERM (parent-death signal)
            print("\n".join(server.lines))  # the box's log, shown when the test fails


async def worker_pids(server: GatewayProcess) -> dict[int, int]:
    """Slot index -> pid of the workers running now (the supervisor's latest "started" line per slot)."""
    await server.wait_for_lines(r"worker \d+ started", 2)
    pids: dict[int, int] = {}
    for line in server.lines:
        if "started (pid" in line:
            index, pid = line.split("worker ")[1].split(" started (pid ")
            pids[int(index)] = int(pid.rstrip(")"))
    return pids


async def open_session(server: GatewayProcess, **kwargs: Any) -> tuple[Any, int]:
    """An /stt-stream session past `ready`, and the pid of the worker serving it."""
    kwargs.setdefault("additional_headers", HEADERS)
    ws = await websockets.connect(server.url("/stt-stream"), **kwargs)
    await ws.send(CONFIGURE)
    assert json.loads(await ws.recv())["type"] == "ready"
    return ws, int(ws.response.headers["X-Voxrelay-Worker"])


async def finish(ws: Any) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"action": "stop"}))
    messages = [json.loads(raw) async for raw in ws]
    assert messages[-1]["type"] == "stopped" and ws.close_code == 1000, messages
    return messages


async def test_sessions_spread_over_both_workers(box: GatewayProcess) -> None:
    pids = set((await worker_pids(box)).values())
    before = await sessions_recorded(box)  # earlier tests' boxes wrote to the same file
    sessions = await asyncio.gather(*(open_session(box) for _ in range(40)))
    served = Counter(pid for _, pid in sessions)
    for ws, _ in sessions:
        await ws.send(FRAME)
    await asyncio.gather(*(finish(ws) for ws, _ in sessions))
    assert set(served) == pids and min(served.values()) >= 5, served  # binomial(40, 1/2): below 5 is ~1e-7
    # Both workers write their sessions to the one SQLite usage file (WAL): all 40 are counted, by any worker.
    async with asyncio.timeout(30):
        while (usage := await sessions_recorded(box) - before) < len(sessions):  # noqa: ASYNC110 (another process)
            await asyncio.sleep(0.5)  # the workers flush every VOXRELAY_USAGE_FLUSH_S (2 s)
    assert usage == len(sessions)
    assert not [line for line in box.lines if "usage database" in line and "ERROR" in line], box.lines


async def sessions_recorded(server: GatewayProcess) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.get(server.http("/v1/usage"), headers=HEADERS)
    assert response.status_code == 200, response.text
    return sum(key["sessions"] for key in response.json()["keys"])


async def mint(server: GatewayProcess) -> tuple[str, int]:
    """A token, and the pid of the worker that minted it (a new connection each time)."""
    async with httpx.AsyncClient() as client:
        response = await client.post(server.http("/v1/auth/token"), headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["token"], int(response.headers["X-Voxrelay-Worker"])


async def test_a_token_minted_by_one_worker_is_redeemed_by_the_other_once(box: GatewayProcess) -> None:
    for _ in range(TRIES):
        token, minted_by = await mint(box)
        ws, served_by = await open_session(box, additional_headers={}, subprotocols=["bearer", token])
        assert ws.subprotocol == "bearer"
        await ws.send(FRAME)
        await finish(ws)
        if served_by != minted_by:
            break
    else:
        pytest.fail(f"{TRIES} tokens were all redeemed by the worker that minted them")
    # Replays are refused on both workers: the used-token memory is the box's, not a worker's.
    for _ in range(20):  # each a new connection: all on one worker by chance is 2 in 2**20
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(box.url("/stt-stream"), subprotocols=["bearer", token])  # type: ignore[list-item]
        assert refused.value.response.status_code == 401 and b"already used" in refused.value.response.body
    refusals = await reused_refusals_by_worker(box)
    assert len(refusals) == 2 and all(refusals.values()), refusals


async def reused_refusals_by_worker(server: GatewayProcess) -> dict[str, float]:
    """Each worker's `voxrelay_tokens_refused_total{reason="invalid_or_reused"}` (the box's /metrics)."""
    families = await scrape_both(server)
    return values(families, "voxrelay_tokens_refused_total", reason="invalid_or_reused")


async def test_sigterm_drains_every_worker_and_live_sessions_finish(box: GatewayProcess) -> None:
    pids = set((await worker_pids(box)).values())
    sessions = []
    for _ in range(TRIES):
        sessions.append(await open_session(box))
        if {pid for _, pid in sessions} == pids and len(sessions) >= 4:
            break
    assert {pid for _, pid in sessions} == pids
    for ws, _ in sessions:
        for _ in range(FRAMES):
            await ws.send(FRAME)
    box.proc.send_signal(signal.SIGTERM)
    for ws, _ in sessions:
        messages = [json.loads(raw) async for raw in ws]
        assert any(m["type"] == "warning" and m["code"] == "draining" for m in messages), messages
        finals = [(m["start"], m["end"]) for m in messages if m["type"] == "final_transcript"]
        assert covered_bytes(finals) == FRAMES * len(FRAME), messages
        assert messages[-1]["type"] == "stopped" and ws.close_code == 1000, (messages[-1], ws.close_code)
    async with asyncio.timeout(30):
        assert await box.proc.wait() == 0
    drained = await box.wait_for_lines(r"drained: \{'sessions': (\d+), 'forced': 0", 2)
    assert sum(int(m.group(1)) for m in drained) == len(sessions)


async def test_a_killed_worker_is_restarted(box: GatewayProcess) -> None:
    first = await scrape_both(box)
    killed = (await worker_pids(box))[0]
    os.kill(killed, signal.SIGKILL)
    await box.wait_for_line(rf"worker 0 \(pid {killed}\) exited unexpectedly \(status -9\); restarting")
    # Scrapes hashed to the dead worker's socket wait for its successor; worker 1 answers the others at once.
    answered_by, without = await first_of_concurrent_scrapes(box)
    assert answered_by == (await worker_pids(box))[1]
    assert up(without) == {"0": 0.0, "1": 1.0} and workers_in(without) == {"1"}, up(without)
    await box.wait_for_lines(r"worker 0 started", 2)
    await box.wait_for_lines(r"engine deepgram ready", 3)
    restarted = (await worker_pids(box))[0]
    assert restarted != killed
    again = await scrape_both(box)  # worker 0's series are back: a new process's
    assert start_times(again)["0"] > start_times(first)["0"] and start_times(again)["1"] == start_times(first)["1"]
    for _ in range(TRIES):
        ws, pid = await open_session(box)
        await ws.send(FRAME)
        await finish(ws)
        if pid == restarted:
            break
    else:
        pytest.fail(f"no session reached the restarted worker in {TRIES}")


# The box's /metrics: every worker's series, labelled worker="<index>".

Families = dict[str, Metric]


async def scrape(server: GatewayProcess) -> tuple[int, Families]:
    """One /metrics answer on a new connection (the kernel picks the worker): its worker's pid, its families."""
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(server.http("/metrics"))
    assert response.status_code == 200, response.text
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    return int(response.headers["X-Voxrelay-Worker"]), families


def values(families: Families, sample: str, **labels: str) -> dict[str, float]:
    """Worker -> value of `sample` (summed over the labels not given)."""
    found: dict[str, float] = {}
    for family in families.values():
        for s in family.samples:
            if s.name == sample and labels.items() <= s.labels.items():
                found[s.labels["worker"]] = found.get(s.labels["worker"], 0.0) + s.value
    return found


def up(families: Families) -> dict[str, float]:
    return values(families, "voxrelay_worker_up")


def workers_in(families: Families) -> set[str]:
    """The workers with series in a scrape (besides voxrelay_worker_up, which names every worker)."""
    return {s.labels["worker"] for f in families.values() if f.name != "voxrelay_worker_up" for s in f.samples}


def start_times(families: Families) -> dict[str, float]:
    return values(families, "process_start_time_seconds")


async def scrape_both(server: GatewayProcess, ready: Any = None) -> Families:
    """Scrapes until each worker has answered one in which both workers are up (and `ready(families)` holds).

    Every scrape on the way must be whole and consistent: a worker marked up has series and one marked
    down has none.
    """
    answered: dict[int, Families] = {}
    async with asyncio.timeout(60):
        while len(answered) < 2:
            pid, families = await scrape(server)
            assert workers_in(families) == {w for w, value in up(families).items() if value == 1.0}, families
            if set(up(families).values()) == {1.0} and (ready is None or ready(families)):
                answered[pid] = families
            else:
                answered.clear()  # not yet: a worker still starting, or counts still on their way
                await asyncio.sleep(0.2)  # polls another process
    return answered[min(answered)]


async def first_of_concurrent_scrapes(
    server: GatewayProcess, then: Callable[[], None] = lambda: None, count: int = 16
) -> tuple[int, Families]:
    """The first answer of `count` scrapes sent at once, each on its own connection (all hashed to one worker:
    2 in 2**16). `then` runs once it is in; the other scrapes are awaited after it."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(scrape(server)) for _ in range(count)]
        async with asyncio.timeout(60):
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = next(iter(done)).result()
        then()
    for task in tasks:  # every scrape is whole and consistent, whoever answered it and when
        families = task.result()[1]
        assert workers_in(families) == {w for w, value in up(families).items() if value == 1.0}, families
    return first


async def test_a_scrape_of_either_worker_shows_both_workers_series(box: GatewayProcess) -> None:
    index_of = {pid: index for index, pid in (await worker_pids(box)).items()}
    sessions: list[tuple[Any, int]] = []
    for _ in range(TRIES):
        sessions.append(await open_session(box))
        on = Counter(str(index_of[pid]) for _, pid in sessions)
        if len(on) == 2 and min(on.values()) >= 2:
            break
    assert len(on) == 2, on
    for ws, _ in sessions:
        await ws.send(FRAME)

    def live(families: Families) -> bool:
        return values(families, "voxrelay_active_sessions") == on

    families = await scrape_both(box, live)  # each worker answered one, both showing both workers' sessions
    assert families["voxrelay_active_sessions"].type == "gauge"
    await asyncio.gather(*(finish(ws) for ws, _ in sessions))

    def ended(families: Families) -> bool:  # a session is counted as it ends on the server
        return values(families, "voxrelay_sessions_total", endpoint="stt-stream", outcome="stopped") == on

    families = await scrape_both(box, ended)
    assert sum(values(families, "voxrelay_sessions_total").values()) == len(sessions)  # nothing refused or failed
    assert values(families, "voxrelay_active_sessions") == {"0": 0.0, "1": 0.0}
    assert set(start_times(families)) == {"0", "1"}  # the per-process collectors: per worker
    bucket = families["voxrelay_event_loop_lag_seconds"].samples[0]
    assert bucket.name.endswith("_bucket") and set(bucket.labels) == {"worker", "le"}
    for _ in range(6):  # and it stays so, whichever worker answers
        assert values((await scrape(box))[1], "voxrelay_sessions_total", outcome="stopped") == on


async def test_a_scrape_leaves_out_a_stuck_worker_and_marks_it_down(box: GatewayProcess) -> None:
    pids = await worker_pids(box)
    before = await scrape_both(box)
    os.kill(pids[0], signal.SIGSTOP)  # stuck: its sockets take connections but nothing answers them
    try:
        # Worker 1 waits 1 s for worker 0, then answers without it; the scrapes on worker 0's socket wait for it.
        answered_by, without = await first_of_concurrent_scrapes(box, lambda: os.kill(pids[0], signal.SIGCONT))
    finally:
        os.kill(pids[0], signal.SIGCONT)
    assert answered_by == pids[1]
    assert up(without) == {"0": 0.0, "1": 1.0} and workers_in(without) == {"1"}, up(without)
    assert start_times(without) == {"1": start_times(before)["1"]}
    await scrape_both(box)  # worker 0 answers again, as itself
