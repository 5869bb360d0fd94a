"""The soak tool's short run, with memory judged per session (the 1,000-session run is in docs/reliability.md).

A percentage of the process's memory hides a leak: 10 % of ~150 MiB is 15 MiB, 150 KB for each of
100 sessions. So the test runs the soak's rounds itself and measures growth per session between two
equal rounds after a warm-up: Python allocations (tracemalloc, exact) and resident memory (coarse,
but it also sees native buffers).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import tracemalloc
from typing import Any

import uvicorn

from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.gateway.app import create_app
from voxrelay.settings import Settings
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script
from voxrelay.testing.soak import _round, _rss_bytes, _settle

SESSIONS = 100
KILL = 0.3
SECONDS = 1.5
# Bounds per session between two equal rounds: a leak of a few KB per session breaks the first.
PYTHON_BYTES_PER_SESSION = 1024
RSS_BYTES_PER_SESSION = 16 * 1024  # RSS moves in pages and allocator arenas: coarse (seen: -1 to 5 KB)


async def measured_soak() -> dict[str, Any]:
    os.environ.setdefault("DEEPGRAM_API_KEY", "soak-key")
    async with FakeDeepgram(default=Script(final_every_s=1.0, interim_every_s=0.5)) as fake:
        engine = DeepgramEngine(DeepgramSettings(url=fake.url))
        app = create_app(Settings(port=0, max_sessions=SESSIONS + 10, idle_timeout_s=30), engine)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", backlog=4096))
        serving = asyncio.create_task(server.serve())
        try:
            assert await _settle(lambda: server.started and app.state.gateway.ready, 30)
            url = f"ws://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/stt-stream"
            gateway = app.state.gateway

            def idle() -> bool:
                return not gateway.sessions and fake.open_connections == 0 and engine.active_streams == 0

            outcomes, python, rss, tasks = [], [], [], []
            for seed in (1, 2, 3):  # warm-up, then two equal rounds
                outcomes.append(await _round(url, SESSIONS, KILL, SECONDS, seed=seed))
                assert await _settle(idle, 60), (len(gateway.sessions), fake.open_connections, engine.active_streams)
                fake.connections.clear()  # the fake's per-connection records are harness memory
                gc.collect()
                python.append(tracemalloc.get_traced_memory()[0])
                rss.append(_rss_bytes())
                tasks.append(len(asyncio.all_tasks()))
            return {"outcomes": outcomes, "python": python, "rss": rss, "tasks": tasks}
        finally:
            server.should_exit = True
            await serving


def test_short_soak_leaves_nothing_behind() -> None:
    # pytest keeps every captured log record for its report: ~2 KB per session of harness memory
    # (two INFO lines each) that would read as a leak. Errors are still logged (and kept).
    logging.disable(logging.WARNING)
    tracemalloc.start()
    try:
        result = asyncio.run(measured_soak())
    finally:
        tracemalloc.stop()
        logging.disable(logging.NOTSET)
    assert result["outcomes"][1:] == [{"stopped": 70, "killed": 30}] * 2, result
    assert result["tasks"][2] <= result["tasks"][1], result  # no task left behind by a round
    python_per_session = (result["python"][2] - result["python"][1]) / SESSIONS
    rss_per_session = (result["rss"][2] - result["rss"][1]) / SESSIONS
    print(f"growth per session: python {python_per_session:.0f} B, rss {rss_per_session:.0f} B")
    assert python_per_session <= PYTHON_BYTES_PER_SESSION, result
    assert rss_per_session <= RSS_BYTES_PER_SESSION, result
