"""`voxrelay serve --workers 2` as real processes on loopback against the fake Deepgram.

Sessions spread over both workers; a token minted by one worker is redeemed by the other, and only
once on the box; SIGTERM drains both with live sessions finishing; a killed worker is restarted.
Each worker names itself in the `X-Voxrelay-Worker` header of every response and handshake.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

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


async def reused_refusals_by_worker(server: GatewayProcess) -> dict[int, float]:
    """Each worker's `voxrelay_tokens_refused_total{reason="invalid_or_reused"}` (its own /metrics)."""
    found: dict[int, float] = {}
    async with asyncio.timeout(30):
        while len(found) < 2:
            async with httpx.AsyncClient() as client:  # a new connection: the kernel picks the worker
                response = await client.get(server.http("/metrics"))
            for line in response.text.splitlines():
                if line.startswith('voxrelay_tokens_refused_total{reason="invalid_or_reused"}'):
                    found[int(response.headers["X-Voxrelay-Worker"])] = float(line.split()[-1])
    return found


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
    killed = (await worker_pids(box))[0]
    os.kill(killed, signal.SIGKILL)
    await box.wait_for_line(rf"worker 0 \(pid {killed}\) exited unexpectedly \(status -9\); restarting")
    await box.wait_for_lines(r"worker 0 started", 2)
    await box.wait_for_lines(r"engine deepgram ready", 3)
    restarted = (await worker_pids(box))[0]
    assert restarted != killed
    for _ in range(TRIES):
        ws, pid = await open_session(box)
        await ws.send(FRAME)
        await finish(ws)
        if pid == restarted:
            break
    else:
        pytest.fail(f"no session reached the restarted worker in {TRIES}")
