"""How `serve --workers N` spreads a connect storm over its workers: SO_REUSEPORT sockets or one shared socket.

    python -m voxrelay.bench.spread --workers 2 --connections 1000 [--shared-socket] [--rounds 3]

Starts the box (the deepgram engine; no upstream is contacted, since no session is configured),
opens `connections` WebSockets to /stt-stream at once, counts them by the worker that accepted
each (its `X-Voxrelay-Worker` header), closes them, and prints one JSON line per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from typing import Any

import websockets

from voxrelay.bench.common import free_port, wait_for_workers

__all__ = ["measure_spread"]


async def _storm(url: str, connections: int) -> dict[str, Any]:
    started = time.monotonic()

    async def one() -> tuple[Any, str]:
        ws = await websockets.connect(url, open_timeout=60, max_queue=None)
        assert ws.response is not None
        return ws, ws.response.headers["X-Voxrelay-Worker"]

    opened = await asyncio.gather(*(one() for _ in range(connections)), return_exceptions=True)
    seconds = time.monotonic() - started
    by_worker = Counter(result[1] for result in opened if not isinstance(result, BaseException))
    await asyncio.gather(*(result[0].close() for result in opened if not isinstance(result, BaseException)))
    counts = sorted(by_worker.values(), reverse=True)
    return {"connections": connections, "by_worker": counts, "failed": connections - sum(counts),
            "largest_share": round(counts[0] / max(1, sum(counts)), 3) if counts else None,
            "storm_s": round(seconds, 2)}


def measure_spread(workers: int, connections: int, shared_socket: bool, rounds: int) -> list[dict[str, Any]]:
    port = free_port()
    env = {**os.environ, "DEEPGRAM_API_KEY": "spread", "VOXRELAY_DEEPGRAM_URL": "ws://127.0.0.1:9",
           "VOXRELAY_MAX_SESSIONS": str(connections + 10), "VOXRELAY_DATA_DIR": tempfile.mkdtemp()}
    box = subprocess.Popen(
        [sys.executable, "-m", "voxrelay.bench.spread", "--serve", "--port", str(port), "--workers", str(workers),
         *(["--shared-socket"] if shared_socket else [])], env=env, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_workers(port, box.pid, workers)
        mode = "one shared socket" if shared_socket else "SO_REUSEPORT"
        return [{"mode": mode, "workers": workers, **asyncio.run(_storm(f"ws://127.0.0.1:{port}/stt-stream",
                                                                        connections))} for _ in range(rounds)]
    finally:
        box.terminate()
        box.wait(timeout=60)


def _serve(port: int, workers: int, shared_socket: bool) -> int:
    from voxrelay.ops.workers import Supervisor, bind_slots, worker_command

    sockets = bind_slots("127.0.0.1", port, workers, reuse_port=not shared_socket)
    flags = ["--port", str(port), "--engine", "deepgram", "--log-level", "warning"]
    return Supervisor(worker_command(flags), sockets).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared-socket", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return _serve(args.port, args.workers, args.shared_socket)
    for row in measure_spread(args.workers, args.connections, args.shared_socket, args.rounds):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
