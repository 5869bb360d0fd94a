"""Soak test: many concurrent proxied sessions against the fake upstream, some killed abruptly, then check for leaks.

    python -m voxrelay.testing.soak --sessions 1000 --kill 0.3 --seconds 5

Runs in one process: the fake Deepgram, a gateway with the deepgram engine (uvicorn on
loopback) and the clients share one event loop. A warm-up round runs first, so the
memory baseline includes the allocator's steady state. Afterwards it checks 0 active
sessions, 0 upstream connections, no leaked asyncio tasks, and resident memory within
`--memory-tolerance` of the baseline; it prints one JSON line and exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import random
import sys
import time
from typing import Any

__all__ = ["main", "soak"]


def _rss_bytes() -> int:
    """RSS after a full collection and glibc's malloc_trim, so freed-but-cached heap is not counted
    as held (both measurements are taken the same way)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _client(url: str, i: int, seconds: float, kill: bool, rng: random.Random) -> str:
    import websockets

    frame = 3200  # 100 ms of 16 kHz linear16
    audio = rng.randbytes(int(32000 * seconds))
    try:
        async with websockets.connect(url, open_timeout=60) as ws:
            await ws.send(json.dumps({"action": "configure", "model": "soak", "interim_results": True}))
            cut = rng.randrange(len(audio) - frame) if kill else None
            for at in range(0, len(audio), frame):
                if cut is not None and at >= cut:
                    ws.transport.abort()  # abrupt: no close frame, like a crashed tab
                    return "killed"
                await ws.send(audio[at : at + frame])
                await asyncio.sleep(0.1)  # real time
            await ws.send(json.dumps({"action": "stop"}))
            async for raw in ws:
                if json.loads(raw)["type"] == "stopped":
                    return "stopped"
            return "closed"
    except Exception as exc:  # counted, reported
        return f"error:{type(exc).__name__}"


async def _round(url: str, sessions: int, kill: float, seconds: float, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    kills = set(rng.sample(range(sessions), int(sessions * kill)))
    outcomes = await asyncio.gather(
        *(_client(url, i, seconds, i in kills, random.Random(seed * 100_003 + i)) for i in range(sessions))
    )
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


async def _settle(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.1)
    return bool(check())


async def soak(sessions: int, kill: float, seconds: float, memory_tolerance: float = 0.05) -> dict[str, Any]:
    import uvicorn

    from voxrelay.engines.deepgram.engine import DeepgramEngine
    from voxrelay.engines.deepgram.settings import DeepgramSettings
    from voxrelay.gateway.app import create_app
    from voxrelay.settings import Settings
    from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

    os.environ.setdefault("DEEPGRAM_API_KEY", "soak-key")
    async with FakeDeepgram(default=Script(final_every_s=1.0, interim_every_s=0.5)) as fake:
        engine = DeepgramEngine(DeepgramSettings(url=fake.url))
        settings = Settings(port=0, max_sessions=sessions + 10, idle_timeout_s=30)
        app = create_app(settings, engine)
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", ws_max_size=1 << 20, backlog=4096)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"ws://127.0.0.1:{port}/stt-stream"
        gateway = app.state.gateway
        while not gateway.ready:  # noqa: ASYNC110 - set by the app's lifespan, which offers no event
            await asyncio.sleep(0.02)

        def idle() -> bool:
            return not gateway.sessions and fake.open_connections == 0 and engine.active_streams == 0

        warmup = await _round(url, sessions, kill, seconds, seed=1)
        await _settle(idle, 60)
        upstream_total = len(fake.connections)
        fake.connections.clear()  # the fake's own per-connection records are harness memory, not the gateway's
        gc.collect()
        tasks_before = len(asyncio.all_tasks())
        rss_before = _rss_bytes()
        started = time.monotonic()
        counts = await _round(url, sessions, kill, seconds, seed=2)
        elapsed = time.monotonic() - started
        settled = await _settle(idle, 60)
        await _settle(lambda: len(asyncio.all_tasks()) <= tasks_before, 10)
        gc.collect()
        rss_after = _rss_bytes()
        leaked_tasks = len(asyncio.all_tasks()) - tasks_before
        rss_change = round(rss_after / rss_before - 1, 4)
        result: dict[str, Any] = {
            "sessions": sessions,
            "killed_fraction": kill,
            "audio_s": seconds,
            "outcomes": counts,
            "warmup_outcomes": warmup,
            "round_s": round(elapsed, 1),
            "active_sessions": len(gateway.sessions),
            "upstream_connections": fake.open_connections,
            "engine_streams": engine.active_streams,
            "leaked_tasks": leaked_tasks,
            "rss_before_mib": round(rss_before / 2**20, 1),
            "rss_after_mib": round(rss_after / 2**20, 1),
            "rss_change": rss_change,
            "upstream_connections_total": upstream_total + len(fake.connections),
        }
        result["ok"] = bool(
            settled
            and leaked_tasks <= 0
            and abs(rss_change) <= memory_tolerance
            and counts.get("stopped", 0) + counts.get("killed", 0) == sessions
        )
        server.should_exit = True
        await serving
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak the gateway (deepgram engine) against the fake upstream.")
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--kill", type=float, default=0.3, help="fraction of sessions killed abruptly")
    parser.add_argument("--seconds", type=float, default=3.0, help="audio per session, sent in real time")
    parser.add_argument("--memory-tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 8 * args.sessions + 1024)), hard))
    result = asyncio.run(soak(args.sessions, args.kill, args.seconds, args.memory_tolerance))
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
