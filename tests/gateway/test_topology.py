"""The scale-out topology of docs/deploy.md, on loopback ports: real processes, real nginx.

    clients -> nginx (deploy/nginx/gateways.conf) -> 2 gateways (--engine deepgram)
            -> nginx (deploy/nginx/workers.conf)  -> 2 local-engine workers (/v1/listen)

50 sessions spread over the instances; one worker is killed mid-run (its sessions
reconnect through the pool or get a clear error; the others are untouched); one
gateway is drained mid-run (no session loses a final).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support import clips, normalize, wer

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (scripts/setup.sh --dev installs Debian's)"),
]
LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling a starting process
    raise TimeoutError(url)


@dataclass
class Topology:
    ports: dict[str, int]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, path: str = "/stt-stream") -> str:
        return f"ws://127.0.0.1:{self.ports['edge']}{path}"


def serve(name: str, port: int, logs: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    with open(logs / f"{name}.log", "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "voxrelay.cli", "serve", "--port", str(port), "--log-level", "warning", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "VOXRELAY_MAX_SESSIONS": "64", **env},
        )


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    tmp = tmp_path_factory.mktemp("topology")
    ports = {name: free_port() for name in ("edge", "g1", "g2", "pool", "w1", "w2")}
    top = Topology(ports)
    # The repository's nginx configs, with their documented ports mapped to free ones.
    mapping = {"8765": "edge", "8766": "g1", "8767": "g2", "8780": "pool", "8781": "w1", "8782": "w2"}
    for conf in ("workers.conf", "gateways.conf"):
        text = re.sub(r"\b(8765|8766|8767|8780|8781|8782)\b", lambda m: str(ports[mapping[m.group(1)]]), (DEPLOY / conf).read_text())
        text = re.sub(r"listen (\d+);", r"listen 127.0.0.1:\1;", text)
        (tmp / conf).write_text(text)
    (tmp / "logs").mkdir()
    (tmp / "nginx.conf").write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/logs/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n client_body_temp_path {tmp}/body;\n proxy_temp_path {tmp}/proxy;\n"
        f" include {tmp}/workers.conf;\n include {tmp}/gateways.conf;\n}}\n"
    )
    try:
        for worker in ("w1", "w2"):
            top.procs[worker] = serve(worker, ports[worker], tmp / "logs", {}, "--engine", "local")
        gateway_env = {
            "DEEPGRAM_API_KEY": "topology-test-key",
            "VOXRELAY_DEEPGRAM_URL": f"ws://127.0.0.1:{ports['pool']}",
            # After the kill the surviving worker decodes all 50 sessions on this machine's 2 cores, with the
            # gateways, nginx and the clients: its last finals can take longer than the default 10 s, and a
            # session given up on then ("did not close the stream within 10 s") measured the machine's load,
            # not the recovery this test is about (it failed 2 runs in 5 on a loaded machine).
            "VOXRELAY_DEEPGRAM_CLOSE_TIMEOUT_S": "45",
        }
        for gateway in ("g1", "g2"):
            top.procs[gateway] = serve(gateway, ports[gateway], tmp / "logs", gateway_env, "--engine", "deepgram")
        top.procs["nginx"] = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],  # type: ignore[list-item]
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in ("w1", "w2", "g1", "g2"):
            wait_http(f"http://127.0.0.1:{ports[name]}/healthz")
        wait_http(f"http://127.0.0.1:{ports['edge']}/healthz")
        yield top
    finally:
        for proc in top.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in top.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class Run:
    clip_index: int
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    sent: int = 0  # audio bytes sent so far
    sent_at_drain: int | None = None  # audio bytes sent when the `draining` warning arrived

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    @property
    def transcript(self) -> str:
        return " ".join(m["transcript"] for m in self.of("final_transcript"))


async def session(url: str, run: Run, audio: bytes, ready: asyncio.Event, count: list[int], total: int) -> None:
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:

        async def receive() -> None:
            # A close other than 1000 (e.g. 1011 after a worker died) ends the loop; the test judges it.
            with contextlib.suppress(websockets.ConnectionClosedError):
                async for raw in ws:
                    message = json.loads(raw)
                    run.messages.append(message)
                    if message["type"] == "ready":
                        count[0] += 1
                        if count[0] == total:
                            ready.set()
                    elif message["type"] == "warning" and message.get("code") == "draining":
                        run.sent_at_drain = run.sent

        receiver = asyncio.create_task(receive())
        await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16, "interim_results": False}))
        started = time.perf_counter()
        try:
            for offset in range(0, len(audio), 3200):
                await ws.send(audio[offset : offset + 3200])
                run.sent = min(len(audio), offset + 3200)
                delay = started + (offset + 3200) / 32000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)  # real-time pacing
            await ws.send(json.dumps({"action": "stop"}))
        except websockets.ConnectionClosed:
            pass
        async with asyncio.timeout(120):
            await receiver
        run.close_code = ws.close_code


async def many(url: str, count: int, pool: list[Any], action: Any) -> list[Run]:
    runs = [Run(i % len(pool)) for i in range(count)]
    ready = asyncio.Event()
    counter = [0]
    tasks = [asyncio.create_task(session(url, run, pool[run.clip_index][1], ready, counter, count)) for run in runs]
    async with asyncio.timeout(60):
        await ready.wait()  # every session is open and streaming
    await action()
    await asyncio.gather(*tasks)
    return runs


def clip_pool() -> list[tuple[Any, bytes]]:
    # Short synthetic clips tiny.en gets right (names and digit strings it mishears are left out).
    names = {"s02_command_timer.wav", "s03_question_weather.wav", "s06_numbers_date_time.wav",
             "s10_dictation_email.wav", "s14_question_distance.wav", "s15_address_navigation.wav"}
    chosen = [c for c in clips("synth") if c.name in names]
    return [(c, c.linear16()) for c in chosen]


def prefix_wer(reference: str, hypothesis: str, min_words: int) -> float:
    """WER of `hypothesis` against the best-matching start of `reference` of at least `min_words` words."""
    words = normalize(reference).split()
    return min(wer([" ".join(words[:k])], [hypothesis]) for k in range(max(1, min_words), len(words) + 1))


def test_fifty_sessions_survive_a_worker_killed_mid_run(topology: Topology) -> None:
    pool = clip_pool()

    async def kill_worker() -> None:
        await asyncio.sleep(1.0)  # let every session send a second of speech first
        topology.procs["w1"].send_signal(signal.SIGKILL)

    runs = asyncio.run(many(topology.url(), 50, pool, kill_worker))
    untouched, recovered, failed = 0, 0, 0
    for run in runs:
        reference = pool[run.clip_index][0].reference
        errors, warnings = run.of("error"), run.of("warning")
        if errors or run.close_code != 1000:
            # A clear error: the client was told why (code and sentence) and the close says it failed.
            failed += 1
            assert errors and all(e["code"] and len(e["message"]) > 10 for e in errors), run.messages[-3:]
            # A fatal error closes 1011-1013; a non-fatal one (the upstream did not close within the close
            # timeout: "later results are lost") still ends with `stopped` and 1000, after the error.
            ended_cleanly = run.close_code == 1000 and run.messages[-1]["type"] == "stopped"
            assert run.close_code in (1011, 1012, 1013) or ended_cleanly, (run.close_code, errors)
            continue
        assert run.of("stopped") and run.close_code == 1000, run.messages[-3:]
        # Every session that did not fail kept its words (replayed audio after a reconnect).
        assert wer([reference], [run.transcript]) <= 0.35, (reference, run.transcript, warnings)
        if warnings:
            recovered += 1
        else:
            untouched += 1
    print(f"worker killed: {untouched} untouched, {recovered} reconnected, {failed} clear errors")
    assert untouched >= 10  # the surviving worker's sessions saw nothing at all
    # The kill hit the sessions on w1 (least_conn spreads 50 sessions over both workers): they noticed it.
    assert recovered + failed >= 10, (untouched, recovered, failed)
    assert recovered >= failed  # most of them survive through the pool (replayed audio), few get an error


def test_draining_a_gateway_loses_no_final(topology: Topology) -> None:
    pool = clip_pool()
    g1 = topology.ports["g1"]

    async def drain_g1() -> None:
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient() as client:
            response = await client.post(f"http://127.0.0.1:{g1}/admin/drain")
            assert response.status_code in (200, 202), response.text

    runs = asyncio.run(many(topology.url(), 12, pool, drain_g1))
    drained = [r for r in runs if any(w.get("code") == "draining" for w in r.of("warning"))]
    assert drained, "no session was on the drained gateway"
    for run in runs:
        # A drained session's client streams on for a moment: it is told once that audio after stop is ignored.
        errors = [e for e in run.of("error") if not (run in drained and e["message"] == "audio after stop is ignored")]
        assert not errors and len(run.of("error")) <= 1, run.of("error")
        assert run.of("stopped") and run.close_code == 1000, run.messages[-3:]
        clip = pool[run.clip_index][0]
        if run in drained:
            # Stopped early, at the drain: the transcript is the clip's start, at least up to where the
            # client was when told of the drain (words assumed evenly spread, 2 words of slack).
            assert run.sent_at_drain is not None
            said = round(len(normalize(clip.reference).split()) * min(1.0, run.sent_at_drain / 32000 / clip.duration))
            assert prefix_wer(clip.reference, run.transcript, said - 2) <= 0.35, (clip.reference, run.transcript)
        else:
            assert wer([clip.reference], [run.transcript]) <= 0.35, (clip.reference, run.transcript)
    # The drained gateway refuses new sessions; nginx sends them to the other.
    after = asyncio.run(many(topology.url(), 2, pool, lambda: asyncio.sleep(0)))
    assert all(r.of("stopped") and not any(w.get("code") == "draining" for w in r.of("warning")) for r in after)
