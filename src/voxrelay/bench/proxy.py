"""Proxy-path benchmark: `--engine deepgram` against a fast fake upstream on loopback.

The fake upstream stamps every transcript with its send time (CLOCK_MONOTONIC, which
all processes share). The same load runs twice: clients straight to the fake (its
Deepgram protocol), then clients through the gateway (`/stt-stream`). The gateway's
added latency is the difference of the two latency distributions at each percentile;
its CPU per stream and memory per session are read from /proc while the load runs.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets

from voxrelay.bench.common import Gateway, free_port, percentile, process_cpu_s, process_rss

__all__ = ["ProxyResults", "run_proxy"]

FRAME_BYTES = 3200  # 100 ms of 16 kHz linear16
KEY = "bench-not-a-real-key"


@dataclass
class ProxyResults:
    levels: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"levels": self.levels}


def _latency_of(transcript: str, received_ns: int) -> float | None:
    stamp = transcript.rsplit(" t", 1)
    if len(stamp) != 2 or not stamp[1].isdigit():
        return None
    return (received_ns - int(stamp[1])) / 1e9


async def _client(url: str, seconds: float, latencies: list[float], *, direct: bool, ready: Callable[[], None]) -> None:
    headers = {"Authorization": f"Token {KEY}"} if direct else None
    await asyncio.sleep(random.random())  # stagger starts: real clients are not in lockstep
    async with websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=60) as ws:
        ready()

        async def read() -> None:
            async for raw in ws:
                now = time.monotonic_ns()
                message = json.loads(raw)
                if direct and message.get("type") == "Results":
                    latency = _latency_of(message["channel"]["alternatives"][0]["transcript"], now)
                elif message.get("type") in ("interim_transcript", "final_transcript"):
                    latency = _latency_of(message["transcript"], now)
                else:
                    latency = None
                if latency is not None:
                    latencies.append(latency)

        reader = asyncio.create_task(read())
        if not direct:
            await ws.send(json.dumps({"action": "configure", "audio_format": {"encoding": "linear16"}}))
        frame = b"\x00\x01" * (FRAME_BYTES // 2)
        started = time.monotonic()
        for i in range(int(seconds * 10)):
            await ws.send(frame)
            delay = started + (i + 1) * 0.1 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # real-time pacing
        await ws.send(json.dumps({"type": "CloseStream"} if direct else {"action": "stop"}))
        try:
            async with asyncio.timeout(30):
                await reader
        except TimeoutError:
            reader.cancel()


async def _load(url: str, streams: int, seconds: float, *, direct: bool, on_all_open: Callable[[], None]) -> list[float]:
    latencies: list[float] = []
    opened = 0
    all_open = asyncio.Event()

    def ready() -> None:
        nonlocal opened
        opened += 1
        if opened == streams:
            all_open.set()

    async def watch() -> None:
        await all_open.wait()
        on_all_open()

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(
        *(_client(url, seconds, latencies, direct=direct, ready=ready) for _ in range(streams)), return_exceptions=True
    )
    watcher.cancel()
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise RuntimeError(f"{len(failures)} of {streams} streams failed: {failures[0]!r}")
    return latencies


def run_proxy(levels: Sequence[int], seconds: float, progress: Callable[[str, int], Callable[[], None]]) -> ProxyResults:
    results = ProxyResults()
    fake_port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "voxrelay.testing.fake_deepgram", "--port", str(fake_port), "--api-key", KEY, "--stamp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tick = progress("proxy path", len(levels))
    try:
        env = {"DEEPGRAM_API_KEY": KEY, "VOXRELAY_DEEPGRAM_URL": f"ws://127.0.0.1:{fake_port}"}
        with Gateway("--engine", "deepgram", "--max-sessions", str(max(levels) + 10), env=env) as gateway:
            for streams in levels:
                direct = asyncio.run(
                    _load(f"ws://127.0.0.1:{fake_port}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true",
                          streams, seconds, direct=True, on_all_open=lambda: None)
                )
                rss_before = process_rss(gateway.proc.pid)
                cpu_before = process_cpu_s(gateway.proc.pid)
                wall_before = time.monotonic()
                peak = {"rss": rss_before}

                def sample() -> None:
                    peak["rss"] = max(peak["rss"], process_rss(gateway.proc.pid))

                relayed = asyncio.run(_load(gateway.url(), streams, seconds, direct=False, on_all_open=sample))
                cpu = process_cpu_s(gateway.proc.pid) - cpu_before
                wall = time.monotonic() - wall_before
                row: dict[str, Any] = {"streams": streams, "messages_direct": len(direct), "messages_relayed": len(relayed)}
                for q in (50, 99):
                    d, r = percentile(direct, q), percentile(relayed, q)
                    row[f"direct_p{q}_ms"] = None if d is None else d * 1000
                    row[f"relayed_p{q}_ms"] = None if r is None else r * 1000
                    row[f"added_p{q}_ms"] = None if d is None or r is None else (r - d) * 1000
                row["gateway_cpu_per_stream_pct"] = 100 * cpu / wall / streams
                row["memory_per_session_kb"] = max(0, peak["rss"] - rss_before) / 1024 / streams
                results.levels.append(row)
                tick()
    finally:
        fake.terminate()
        fake.wait(timeout=30)
    return results

