"""Gateway CPU per session set-up and per relayed message on the Deepgram proxy path (issue 17).

    PYTHONPATH=src .venv/bin/python scripts/relay_cost.py [--storm 1000] [--streams 1000] [--seconds 12]
        [--storm-rounds 2] [--profile out.txt] [--native] [--stack floor] [--json out.json]

The proxy benchmark's rig (`bench.upstream`, `bench.loadgen`), pinned as `voxrelay bench` pins it: the
gateway (`voxrelay serve --engine deepgram`) on the first core, the fake upstream and the clients on the
others. Run it under `flock -x /tmp/voxrelay-bench.lock`. Three measurements, one gateway process:

- idle: the gateway's CPU rate with no session (the loop-lag probe, timers), taken off the others;
- setup (a connect storm): `--storm` sessions started within 1 s, each `configure`, 3 audio frames
  (0.3 s, real time), `stop`, close; gateway CPU / sessions = the cost of one session's life minus
  its streaming: two handshakes, admission, session objects, the upstream's URL and open, the
  closes. The 3 frames and their transcripts cost ~0.1 ms of that (15 messages at the per-message cost);
- per message (steady state): `--streams` real-time streams of `--seconds`; in the load's steady
  window (every stream ready, none ended), gateway CPU / relayed messages, where a relayed message is
  an audio frame (client -> gateway -> upstream) or a transcript (upstream -> gateway -> client):
  15 per stream-second with the rig's 100 ms frames and 5 transcripts a second.

`--profile FILE` runs `py-spy record --format raw` (collapsed stacks) on the gateway during the steady
window of the streams run, `--profile-storm FILE` during the first storm (py-spy next to the Python in
use, or on PATH; `--native` adds the C frames). `--profiler perf` samples C frames with `perf record -g`
instead, without pausing the process; `--profiler perf-stat` counts CPU time, system calls and context
switches. `--stack floor` measures the stack floor instead of the gateway (`bench.floors_app`'s
`uvicorn-sansio` relay, what `voxrelay serve` runs on, with no voxrelay logic), so the two profiles and
costs can be set side by side: the gap is voxrelay's own.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from voxrelay.bench.common import Gateway, free_port, percentile, process_cpu_s, process_rss
from voxrelay.bench.floors import server_command
from voxrelay.bench.loadgen import FRAME_S, LoadResult, run_load
from voxrelay.bench.proxy import affinity_kept
from voxrelay.bench.sansio import run_on_uvloop
from voxrelay.bench.upstream import BENCH_KEY, running_upstream

KEY = BENCH_KEY
FRAMES_PER_S = round(1 / FRAME_S)


async def _sampled(load: Any, pid: int, samples: list[tuple[int, float]]) -> LoadResult:
    """Run `load` while sampling (monotonic ns, gateway CPU s) every 0.1 s."""

    async def sample() -> None:
        while True:
            samples.append((time.monotonic_ns(), process_cpu_s(pid)))
            await asyncio.sleep(0.1)

    sampler = asyncio.ensure_future(sample())
    try:
        return await load
    finally:
        sampler.cancel()
        samples.append((time.monotonic_ns(), process_cpu_s(pid)))


def _cpu_at(samples: list[tuple[int, float]], at_ns: int) -> float:
    """The gateway's CPU seconds at `at_ns`, interpolated between samples."""
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t0 <= at_ns <= t1:
            return c0 + (c1 - c0) * (at_ns - t0) / max(1, t1 - t0)
    return samples[0][1] if at_ns < samples[0][0] else samples[-1][1]


def _idle_rate(pid: int, seconds: float = 3.0) -> float:
    cpu0, t0 = process_cpu_s(pid), time.monotonic()
    time.sleep(seconds)  # the gateway idles: its own timers only
    return (process_cpu_s(pid) - cpu0) / (time.monotonic() - t0)


_NATIVE: list[str] = []  # ["--native"] with --native (py-spy then pauses the process to sample: no --nonblocking)
_PROFILER = ["py-spy"]  # or "perf" (C frames, no pauses), "perf-stat" (CPU time, system calls, context switches)


def _py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    duration = str(max(1, int(seconds)))
    if _PROFILER[0] == "perf":
        command = ["perf", "record", "-F", "499", "-g", "-p", str(pid), "-o", str(out), "--", "sleep", duration]
    elif _PROFILER[0] == "perf-stat":
        events = "task-clock,context-switches,raw_syscalls:sys_enter"
        command = ["perf", "stat", "-e", events, "-p", str(pid), "-o", str(out), "--", "sleep", duration]
    else:
        exe = Path(sys.executable).with_name("py-spy")
        command = [str(exe) if exe.exists() else shutil.which("py-spy") or "py-spy", "record", "--pid", str(pid),
                   "--format", "raw", "--rate", "250", "--duration", duration,
                   *(_NATIVE or ["--nonblocking"]), "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class _Floor(Gateway):
    """The `uvicorn-sansio` stack floor (`bench.floors`' command for it) where the gateway would run, same interface."""

    def __init__(self, upstream_url: str) -> None:
        self.port, self.log = free_port(), None
        command, env = server_command("uvicorn-sansio", self.port, upstream_url, max_sessions=0)
        self.proc = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env}
        )


def _storm(gateway: Gateway, sessions: int, idle: float, profile: Path | None = None) -> dict[str, Any]:
    pid = gateway.proc.pid
    spy = _py_spy(pid, 3, profile) if profile is not None else None
    cpu0, t0 = process_cpu_s(pid), time.monotonic()
    result = run_on_uvloop(run_load(gateway.url(), sessions, 3 * FRAME_S, protocol="gateway"))
    time.sleep(1.0)  # the gateway finishes its teardowns (it closes after the client's close)
    if spy is not None:
        spy.wait(timeout=60)
    wall = time.monotonic() - t0
    cpu = process_cpu_s(pid) - cpu0 - idle * wall
    return {
        "sessions": sessions,
        "failed": len(result.failures),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "setup_ms_per_session": round(1000 * cpu / sessions, 3),
        "ready_p50_ms": _ms(percentile(result.ready_s, 50)),
        "ready_p99_ms": _ms(percentile(result.ready_s, 99)),
    }


def _steady(gateway: Gateway, streams: int, seconds: float, idle: float, profile: Path | None) -> dict[str, Any]:
    pid = gateway.proc.pid
    samples: list[tuple[int, float]] = []
    rss0 = process_rss(pid)
    spy: subprocess.Popen[bytes] | None = None

    def start_profile() -> None:
        nonlocal spy
        if profile is not None:
            spy = _py_spy(pid, seconds - 4, profile)

    load = run_load(gateway.url(), streams, seconds, protocol="gateway", on_all_open=start_profile)
    result = run_on_uvloop(_sampled(load, pid, samples))
    rss = process_rss(pid) - rss0
    if spy is not None:
        spy.wait(timeout=60)
    window = result._steady_window()
    row: dict[str, Any] = {"streams": streams, "seconds": seconds, "failed": len(result.failures)}
    row["ready_p99_ms"] = _ms(percentile(result.ready_s, 99))
    if window is None:
        row["steady_s"] = 0.0
        return row
    lo, hi = window
    span = (hi - lo) / 1e9
    cpu = _cpu_at(samples, hi) - _cpu_at(samples, lo) - idle * span
    transcripts = sum(1 for sent in result.sent_ns if lo <= sent <= hi)
    audio = streams * span * FRAMES_PER_S
    messages = transcripts + audio
    row.update(
        steady_s=round(span, 2),
        gateway_cpu_pct=round(100 * (cpu + idle * span) / span, 1),
        messages_per_s=round(messages / span),
        per_message_us=round(1e6 * cpu / messages, 2),
        cpu_per_stream_pct=round(100 * cpu / span / streams, 4),
        rss_rise_kb_per_session=round(rss / 1024 / streams, 1),
    )
    return row


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storm", type=int, default=1000, help="sessions in the connect storm (0: none)")
    parser.add_argument("--storm-rounds", type=int, default=2)
    parser.add_argument("--streams", type=int, default=1000, help="streams for the per-message cost (0: none)")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the steady window")
    parser.add_argument("--profile-storm", type=Path, help="py-spy raw profile of the first storm's first 3 s")
    parser.add_argument("--native", action="store_true", help="profiles include native (C) frames")
    parser.add_argument("--profiler", choices=("py-spy", "perf", "perf-stat"), default="py-spy",
                        help="what --profile/--profile-storm run: py-spy (Python frames), perf record -g (C frames, "
                        "no pauses), perf stat (CPU time, system calls, context switches)")
    parser.add_argument("--stack", choices=("voxrelay", "floor"), default="voxrelay",
                        help="the gateway, or the uvicorn-sansio floor relay in its place")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    if args.native:
        _NATIVE.append("--native")
    _PROFILER[0] = args.profiler

    port = free_port()
    cores = sorted(os.sched_getaffinity(0))
    out: dict[str, Any] = {"cpu": _cpu_name(), "cores": len(cores), "stack": args.stack}
    env = {"DEEPGRAM_API_KEY": KEY, "VOXRELAY_DEEPGRAM_URL": f"ws://127.0.0.1:{port}"}
    sessions = max(args.storm, args.streams) + 10
    server = (
        _Floor(f"ws://127.0.0.1:{port}") if args.stack == "floor"
        else Gateway("--engine", "deepgram", "--max-sessions", str(sessions), env=env)
    )
    with running_upstream(port) as upstream, affinity_kept(), server as gateway:
        if len(cores) >= 2:
            os.sched_setaffinity(gateway.proc.pid, {cores[0]})
            os.sched_setaffinity(upstream.pid, set(cores[1:]))
            os.sched_setaffinity(0, set(cores[1:]))
        # A warm-up: first connects import and compile what later ones reuse.
        run_on_uvloop(run_load(gateway.url(), 20, 3 * FRAME_S, protocol="gateway", stagger_s=0.2))
        idle = _idle_rate(gateway.proc.pid)
        out["idle_cpu_pct"] = round(100 * idle, 2)
        rounds = args.storm_rounds if args.storm else 0
        out["storms"] = [_storm(gateway, args.storm, idle, args.profile_storm if i == 0 else None)
                         for i in range(rounds)]
        if args.streams:
            out["steady"] = _steady(gateway, args.streams, args.seconds, idle, args.profile)
        if args.stack == "voxrelay":  # a reconnect replays audio and shifts timestamps: not the steady relay
            out["upstream_reconnects"] = _reconnects(gateway)
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


def _reconnects(gateway: Gateway) -> float:
    """The gateway's upstream reconnects so far (all results), from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{gateway.port}/metrics", timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("voxrelay_upstream_reconnects_total"))


def _cpu_name() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
