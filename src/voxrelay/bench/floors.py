"""Stack floors (issue 17): what each WebSocket server stack costs at N streams before voxrelay's logic.

Each stack serves the same minimal relay (`bench.floors_app`) in a subprocess, measured
with the proxy benchmark's rig and method (`bench.proxy`): the fake upstream and the
load generator on the other cores, the server pinned to core 0, real-time streams that
start within `stagger_s`, added latency = through the server minus straight to the
upstream at each percentile, CPU and peak RSS of the server's process tree from /proc
(granian runs its app in a worker process). `voxrelay` is the real gateway
(`voxrelay serve --engine deepgram`) on the same rig, for the gap between floor and
product. Rounds run the stacks in a rotated order, so a disturbance on the shared
machine does not land on one stack only.

    python -m voxrelay.bench.floors --streams 1000 --seconds 30 --rounds 2 --out floors.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from voxrelay.bench.common import free_port, percentile, process_cpu_s, process_rss
from voxrelay.bench.floors_app import STACKS, VOXRELAY_ON_GRANIAN
from voxrelay.bench.loadgen import LoadResult, run_load
from voxrelay.bench.proxy import affinity_kept, level_row, split_cores
from voxrelay.bench.sansio import run_on_uvloop
from voxrelay.bench.upstream import BENCH_KEY, running_upstream

__all__ = ["ALL_STACKS", "FloorResults", "format_table", "run_floors", "server_command"]

REFERENCE = "voxrelay"  # the real gateway on the same rig
ALL_STACKS = (*STACKS, REFERENCE, VOXRELAY_ON_GRANIAN)
KEY = BENCH_KEY
_NO_CLOSE_CODE = "1005"  # granian's RSGI close(1000) sends a close frame without a code (see format_table)


@dataclass
class FloorResults:
    seconds: float
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per (round, level, stack): bench.proxy's row
    cores: dict[str, list[int]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "cores": self.cores, "rows": self.rows}


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc: each thread's children)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except FileNotFoundError:
            continue
    return pids


def _tree_cpu_s(pid: int) -> float:
    return sum(process_cpu_s(p) for p in _tree(pid))


def _tree_rss(pid: int) -> int:
    return sum(process_rss(p) for p in _tree(pid))


def _core_ticks(cores: set[int]) -> tuple[int, int, int]:
    """(busy, stolen, all) clock ticks of `cores` so far (/proc/stat): to tell what else ran on them."""
    busy = stolen = total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                ticks = [int(v) for v in values[:8]]  # user nice system idle iowait irq softirq steal
                busy += sum(ticks) - ticks[3] - ticks[4] - ticks[7]
                stolen += ticks[7]
                total += sum(ticks)
    return busy, stolen, total


def split_stack(name: str) -> tuple[str, str]:
    """`stack` or `stack@/path/to/python` (the server on another interpreter): (stack, python)."""
    stack, _, python = name.partition("@")
    return stack, python or sys.executable


def server_command(stack: str, port: int, upstream_url: str, max_sessions: int) -> tuple[list[str], dict[str, str]]:
    """The command line and extra environment that serve `stack` on `port`, relaying to `upstream_url`.

    `stack@/path/to/python` runs the server on that interpreter (its environment must have voxrelay installed);
    the rig stays on this one.
    """
    stack, python = split_stack(stack)
    if stack == REFERENCE:
        serve = ["serve", "--port", str(port), "--log-level", "warning", "--engine", "deepgram"]
        env = {"DEEPGRAM_API_KEY": KEY, "VOXRELAY_DEEPGRAM_URL": upstream_url}
        return [python, "-m", "voxrelay.cli", *serve, "--max-sessions", str(max_sessions)], env
    args = ["--stack", stack, "--port", str(port), "--upstream", upstream_url, "--api-key", KEY]
    env = {}
    if stack == VOXRELAY_ON_GRANIAN:  # voxrelay's settings, as `voxrelay serve` would take them from its flags
        env = {"DEEPGRAM_API_KEY": KEY, "VOXRELAY_DEEPGRAM_URL": upstream_url, "VOXRELAY_ENGINE": "deepgram",
               "VOXRELAY_MAX_SESSIONS": str(max_sessions), "VOXRELAY_LOG_LEVEL": "warning"}
    return [python, "-W", "ignore::DeprecationWarning", "-m", "voxrelay.bench.floors_app", *args], env


@contextmanager
def _server(stack: str, upstream_url: str, cores: set[int] | None, max_sessions: int) -> Iterator[tuple[int, int]]:
    """Start `stack` pinned to `cores`, wait for its /healthz, yield (pid, port); stop it after."""
    port = free_port()
    command, env = server_command(stack, port, upstream_url, max_sessions)
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        if cores is not None:
            os.sched_setaffinity(proc.pid, cores)  # before it starts threads or workers: they inherit it
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{stack} exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stack} did not answer /healthz")
            time.sleep(0.05)  # polling a starting process
        yield proc.pid, port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _sampled(load: Any, pid: int, peak: dict[str, int]) -> LoadResult:
    """Run `load` while sampling the RSS of the server's process tree."""

    async def sample() -> None:
        while True:
            peak["rss"] = max(peak["rss"], _tree_rss(pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.ensure_future(sample())
    try:
        result: LoadResult = await load
        return result
    finally:
        sampler.cancel()


def run_floors(
    stacks: Sequence[str],
    levels: Sequence[int],
    seconds: float,
    rounds: int = 2,
    *,
    stagger_s: float = 1.0,
    log: Callable[[str], None] = lambda line: None,
) -> FloorResults:
    """Measure each stack at each level, `rounds` times, the stacks' order rotated every round."""
    unknown = {split_stack(stack)[0] for stack in stacks} - set(ALL_STACKS)
    if unknown:
        raise ValueError(f"unknown stacks {sorted(unknown)}: choose from {', '.join(ALL_STACKS)}")
    results = FloorResults(seconds)
    port = free_port()
    upstream_url = f"ws://127.0.0.1:{port}"
    direct_url = f"{upstream_url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
    split = split_cores()
    with running_upstream(port) as upstream, affinity_kept():
        server_cores: set[int] | None = None
        rig_cores: set[int] = set()
        if split:
            server_cores, rig_cores = split
            os.sched_setaffinity(upstream.pid, rig_cores)
            os.sched_setaffinity(0, rig_cores)
            results.cores = {"server": sorted(server_cores), "rig": sorted(rig_cores)}
        for round_ in range(rounds):
            order = list(stacks[round_ % len(stacks) :]) + list(stacks[: round_ % len(stacks)])
            for streams in levels:
                direct = run_on_uvloop(
                    run_load(direct_url, streams, seconds, protocol="direct", api_key=KEY, stagger_s=stagger_s)
                )
                for stack in order:
                    with _server(stack, upstream_url, server_cores, max(levels) + 10) as (pid, server_port):
                        before = _core_ticks(server_cores or set()), _core_ticks(rig_cores)
                        row = _measure(pid, server_port, streams, seconds, stagger_s, direct)
                        after = _core_ticks(server_cores or set()), _core_ticks(rig_cores)
                    _add_core_load(row, before, after)
                    row.update(stack=stack, round=round_ + 1)
                    results.rows.append(row)
                    log(_line(row))
    return results


def _measure(pid: int, port: int, streams: int, seconds: float, stagger_s: float, direct: LoadResult) -> dict[str, Any]:
    rss_before = _tree_rss(pid)
    cpu_before = _tree_cpu_s(pid)
    wall_before = time.monotonic()
    peak = {"rss": rss_before}
    load = run_load(f"ws://127.0.0.1:{port}/stt-stream", streams, seconds, protocol="gateway", stagger_s=stagger_s)
    relayed = run_on_uvloop(_sampled(load, pid, peak))
    cpu_share = (_tree_cpu_s(pid) - cpu_before) / (time.monotonic() - wall_before)
    row = level_row(streams, direct, relayed, cpu_share, peak["rss"] - rss_before)
    row["cpu_pct"] = 100 * cpu_share
    row["no_close_code"] = sum(failure.startswith(_NO_CLOSE_CODE) for failure in relayed.failures)
    row["failed_relayed"] -= row["no_close_code"]
    row.pop("first_failure", None)
    other = [failure for failure in relayed.failures if not failure.startswith(_NO_CLOSE_CODE)]
    if other:
        row["first_failure"] = other[0]
    row["ready_p99_ms"] = _ms(percentile(relayed.ready_s, 99))
    return row


Ticks = tuple[int, int, int]


def _add_core_load(row: dict[str, Any], before: tuple[Ticks, Ticks], after: tuple[Ticks, Ticks]) -> None:
    """What else ran on the server's core meanwhile (its busy share less the server's own, and the hypervisor's
    steal), and how busy the rig's cores were (a saturated rig would delay both runs alike, but not fairly)."""
    busy, stolen, total = (a - b for a, b in zip(after[0], before[0], strict=True))
    if total:
        row["core_other_pct"] = max(0.0, 100 * busy / total - row["cpu_pct"])
        row["core_steal_pct"] = 100 * stolen / total
    busy, _, total = (a - b for a, b in zip(after[1], before[1], strict=True))
    if total:
        row["rig_busy_pct"] = 100 * busy / total


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _line(row: dict[str, Any]) -> str:
    return (
        f"round {row['round']} {row['stack']:<19} {row['streams']:>5} streams: cpu {_fmt(row['cpu_pct'])} %, "
        f"steady added p50/p99 {_fmt(row['added_p50_ms'], 2)}/{_fmt(row['added_p99_ms'], 2)} ms, "
        f"whole-run p99 {_fmt(row['all_added_p99_ms'])} ms, ready p99 {_fmt(row['ready_p99_ms'])} ms, "
        f"failed {row['failed_relayed']}, {_fmt(row['memory_per_session_kb'])} KB/session; "
        f"on its core meanwhile: other {_fmt(row.get('core_other_pct'))} %, steal {_fmt(row.get('core_steal_pct'))} %; "
        f"rig cores {_fmt(row.get('rig_busy_pct'))} % busy"
    )


def format_table(results: FloorResults) -> str:
    """Markdown: one line per stack and level, each cell the rounds' values in run order (`a / b`)."""
    lines = [
        "| stack | streams | CPU % of a core | steady added p50 / p99 (ms) | whole-run added p99 (ms) "
        "| ready p99 (ms) | failed | KB / session |",
        "|---|---|---|---|---|---|---|---|",
    ]
    keys: list[tuple[str, int]] = []
    for row in results.rows:
        if (row["stack"], row["streams"]) not in keys:
            keys.append((row["stack"], row["streams"]))
    for stack, streams in sorted(keys, key=lambda key: (key[1], ALL_STACKS.index(split_stack(key[0])[0]), key[0])):
        rows = [row for row in results.rows if row["stack"] == stack and row["streams"] == streams]

        def cell(name: str, digits: int = 1, rows: list[dict[str, Any]] = rows) -> str:
            return " / ".join(_fmt(row[name], digits) for row in rows)

        steady = " ; ".join(f"{_fmt(r['added_p50_ms'], 2)} / {_fmt(r['added_p99_ms'], 2)}" for r in rows)
        failed = " / ".join(str(r["failed_relayed"]) + (" (+no code)" if r["no_close_code"] else "") for r in rows)
        lines.append(
            f"| {stack} | {streams} | {cell('cpu_pct', 0)} | {steady} | {cell('all_added_p99_ms')} "
            f"| {cell('ready_p99_ms', 0)} | {failed} | {cell('memory_per_session_kb', 0)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure WebSocket stack floors with the proxy benchmark's rig.")
    parser.add_argument(
        "--stacks", nargs="+", default=list(ALL_STACKS), metavar="STACK[@PYTHON]",
        help=f"of {', '.join(ALL_STACKS)}; @PYTHON serves it on that interpreter (e.g. voxrelay@/venv313/bin/python)",
    )
    parser.add_argument("--streams", nargs="+", type=int, default=[1000])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per stream")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write every row as JSON here")
    parser.add_argument("--table", nargs="+", type=Path, metavar="JSON", help="print the table of earlier --out files")
    args = parser.parse_args(argv)
    if args.table:
        merged = FloorResults(0.0)
        for path in args.table:
            data = json.loads(path.read_text())
            merged.seconds, merged.cores = data["seconds"], data["cores"]
            merged.rows.extend(data["rows"])
        print(format_table(merged))
        return
    results = run_floors(
        args.stacks, args.streams, args.seconds, args.rounds, log=lambda line: print(line, file=sys.stderr, flush=True)
    )
    if args.out is not None:
        args.out.write_text(json.dumps(results.to_dict(), indent=1))
    print(format_table(results))


if __name__ == "__main__":
    main()
