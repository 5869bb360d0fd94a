"""Proxy-path benchmark: `--engine deepgram` against a fast fake upstream on loopback.

The fake upstream (`bench.upstream`, a subprocess) stamps every transcript with its
send time (CLOCK_MONOTONIC, which all processes share). The same load (`bench.loadgen`)
runs twice per level: clients straight to the upstream (Deepgram's protocol), then
clients through the gateway (`/stt-stream`). The gateway's added latency is the
difference of the two latency distributions at each percentile; its CPU per stream
and memory per session are read from /proc while the load runs.

On a machine with two or more cores the gateway gets a core of its own and the rig
(clients and upstream) the others, as on a real deployment where clients and Deepgram
are elsewhere: otherwise the gateway's numbers would include waiting behind the rig.
With `workers` (`voxrelay bench --proxy-workers N`) the gateway runs `serve --workers N`
and nothing is pinned: the workers and the rig share the whole machine, and the CPU and
memory figures are the supervisor's and all its workers' together.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from voxrelay.bench.common import (
    Gateway,
    free_port,
    percentile,
    process_cpu_s,
    process_rss,
    process_tree,
    wait_for_workers,
)
from voxrelay.bench.loadgen import LoadResult, run_load
from voxrelay.bench.sansio import run_on_uvloop
from voxrelay.bench.upstream import BENCH_KEY, running_upstream

__all__ = ["ProxyResults", "affinity_kept", "level_row", "run_proxy", "split_cores"]

KEY = BENCH_KEY


@dataclass
class ProxyResults:
    levels: list[dict[str, Any]] = field(default_factory=list)
    cores: dict[str, list[int]] | None = None  # CPU affinity of the gateway and the rig, when pinned
    workers: int | None = None  # `serve --workers N`, unpinned

    def to_dict(self) -> dict[str, Any]:
        return {"levels": self.levels, "cores": self.cores, "workers": self.workers}


def split_cores() -> tuple[set[int], set[int]] | None:
    """(gateway cores, rig cores): one core for the gateway, the rest for the rig; None on one core."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return {cores[0]}, set(cores[1:])


async def _sampled(load: Coroutine[Any, Any, LoadResult], pids: list[int], peak: dict[str, int]) -> LoadResult:
    """Run `load` while sampling the gateway's RSS (the peak is the memory at full load)."""

    async def sample() -> None:
        while True:
            peak["rss"] = max(peak["rss"], sum(process_rss(pid) for pid in pids))
            await asyncio.sleep(0.25)

    sampler = asyncio.ensure_future(sample())
    try:
        return await load
    finally:
        sampler.cancel()


def run_proxy(
    levels: Sequence[int], seconds: float, progress: Callable[[str, int], Callable[[], None]],
    workers: int | None = None,
) -> ProxyResults:
    results = ProxyResults()
    results.workers = workers
    port = free_port()
    tick = progress("proxy path", len(levels))
    split = split_cores() if workers is None else None
    env = {"DEEPGRAM_API_KEY": KEY, "VOXRELAY_DEEPGRAM_URL": f"ws://127.0.0.1:{port}"}
    flags = ["--engine", "deepgram", "--max-sessions", str(max(levels) + 10)]
    with (
        running_upstream(port) as upstream,
        affinity_kept(),
        Gateway(*flags, *(["--workers", str(workers)] if workers else []), env=env) as gateway,
    ):
        pid = gateway.proc.pid
        if workers and workers > 1:
            wait_for_workers(gateway.port, pid, workers)
        if split:
            gateway_cores, rig_cores = split
            os.sched_setaffinity(pid, gateway_cores)
            os.sched_setaffinity(upstream.pid, rig_cores)
            os.sched_setaffinity(0, rig_cores)
            results.cores = {"gateway": sorted(gateway_cores), "rig": sorted(rig_cores)}
        direct_url = f"ws://127.0.0.1:{port}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
        for streams in levels:
            direct = run_on_uvloop(run_load(direct_url, streams, seconds, protocol="direct", api_key=KEY))
            pids = process_tree(pid)
            rss_before = sum(process_rss(p) for p in pids)
            cpu_before = sum(process_cpu_s(p) for p in pids)
            wall_before = time.monotonic()
            peak = {"rss": rss_before}
            load = run_load(gateway.url(), streams, seconds, protocol="gateway")
            relayed = run_on_uvloop(_sampled(load, pids, peak))
            cpu = sum(process_cpu_s(p) for p in pids) - cpu_before
            wall = time.monotonic() - wall_before
            results.levels.append(level_row(streams, direct, relayed, cpu / wall, peak["rss"] - rss_before))
            tick()
    return results


@contextlib.contextmanager
def affinity_kept() -> Iterator[None]:
    """This process's CPU affinity as it was on entry, whatever the body pins it to."""
    if not hasattr(os, "sched_getaffinity"):  # not Linux: nothing was pinned
        yield
        return
    own = os.sched_getaffinity(0)
    try:
        yield
    finally:
        os.sched_setaffinity(0, own)


def level_row(streams: int, direct: LoadResult, relayed: LoadResult, cpu_share: float, rss_rise: int) -> dict[str, Any]:
    """One level's figures. `added_*` compare the steady state (every stream ready and streaming),
    `all_added_*` the whole run, ramp-up and ramp-down included; `ready_*` is connect -> ready."""
    row: dict[str, Any] = {
        "streams": streams,
        "messages_direct": len(direct.latencies_s),
        "messages_relayed": len(relayed.latencies_s),
        "steady_s": round(min(direct.steady_s, relayed.steady_s), 2),
        "failed_direct": len(direct.failures),
        "failed_relayed": len(relayed.failures),
    }
    for prefix, d_values, r_values in (
        ("", direct.steady_latencies_s(), relayed.steady_latencies_s()),
        ("all_", direct.latencies_s, relayed.latencies_s),
    ):
        for q in (50, 99):
            d, r = percentile(d_values, q), percentile(r_values, q)
            row[f"{prefix}direct_p{q}_ms"] = None if d is None else d * 1000
            row[f"{prefix}relayed_p{q}_ms"] = None if r is None else r * 1000
            row[f"{prefix}added_p{q}_ms"] = None if d is None or r is None else (r - d) * 1000
    for q in (50, 99):
        d, r = percentile(direct.ready_s, q), percentile(relayed.ready_s, q)
        row[f"ready_direct_p{q}_ms"] = None if d is None else d * 1000
        row[f"ready_relayed_p{q}_ms"] = None if r is None else r * 1000
    row["gateway_cpu_per_stream_pct"] = 100 * cpu_share / streams
    row["memory_per_session_kb"] = max(0, rss_rise) / 1024 / streams
    if relayed.failures:
        row["first_failure"] = relayed.failures[0]
    return row
