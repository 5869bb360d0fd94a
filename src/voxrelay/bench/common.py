"""What the benchmarks share: corpus clips, a gateway subprocess, percentiles, process stats."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from voxrelay.client import load_audio

__all__ = [
    "Clip", "Gateway", "find_corpus", "free_port", "load_clips", "percentile", "process_cpu_s", "process_rss",
    "process_tree", "speech_bounds", "wait_for_workers",
]

RATE = 16000


@dataclass(frozen=True)
class Clip:
    name: str
    reference: str
    pcm: np.ndarray  # float32 mono 16 kHz, as recorded
    speech_start: float  # seconds: first 20 ms frame above the energy gate
    speech_end: float  # seconds: end of the last frame above it

    def trimmed(self, tail_s: float = 0.05) -> np.ndarray:
        """The clip cut `tail_s` after its last speech: a stop right after the last word."""
        return self.pcm[: int((self.speech_end + tail_s) * RATE)]

    @property
    def duration(self) -> float:
        return len(self.pcm) / RATE


def find_corpus() -> Path:
    """The repository's test clips, else the shared corpus next to the checkout."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[3] / "tests" / "fixtures" / "audio", here.parents[4] / "shared" / "corpus"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("no corpus found: pass --corpus DIR (a folder with refs.tsv and WAV clips)")


def load_clips(corpus: Path, subsets: Sequence[str] = ("real", "synth"), limit: int | None = None) -> list[Clip]:
    """Clips listed in `refs.tsv` files under `corpus` (with a `subset` column, or one folder per subset)."""
    rows: list[tuple[Path, dict[str, str]]] = []
    for refs in sorted(corpus.rglob("refs.tsv")):
        with open(refs, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                subset = row.get("subset") or refs.parent.name
                if subset in subsets:
                    rows.append((refs.parent / row["file"], row))
    clips = []
    for path, row in rows[:limit]:
        pcm = load_audio(str(path))
        start, end = speech_bounds(pcm)
        clips.append(Clip(path.name, row["reference_transcript"], pcm, start, end))
    return clips


def speech_bounds(pcm: np.ndarray, frame: int = 320, gate_db: float = -35.0) -> tuple[float, float]:
    """First and last 20 ms frame whose level is within `gate_db` of the loudest frame."""
    n = len(pcm) // frame
    if n == 0:
        return 0.0, len(pcm) / RATE
    rms = np.sqrt(np.mean(pcm[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9
    level = 20 * np.log10(rms / rms.max())
    loud = np.flatnonzero(level > gate_db)
    return loud[0] * frame / RATE, (loud[-1] + 1) * frame / RATE


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_rss(pid: int) -> int:
    """Resident set size in bytes (Linux /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_tree(pid: int) -> list[int]:
    """`pid` and its children (a `serve --workers N` supervisor's workers), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(child) for child in children)]


def wait_for_workers(port: int, pid: int, workers: int, timeout: float = 60.0) -> None:
    """Until each of the `workers` of the supervisor `pid` answered /healthz on `port` (a new connection each
    time: the kernel picks the worker; each names itself in `X-Voxrelay-Worker`)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(process_tree(pid)) < workers + 1 or len(seen) < workers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(seen)} of {workers} workers answered")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)  # polling starting processes
            continue
        if response.status_code == 200:
            seen.add(response.headers.get("x-voxrelay-worker", ""))


class Gateway:
    """`voxrelay serve` in a subprocess (so its CPU and memory can be measured apart from the clients)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        """`log`: a file for the process' output (else it is dropped), quoted when the process does not start."""
        self.port = free_port()
        self.log = log
        with open(log, "wb") if log is not None else open(os.devnull, "wb") as output:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "voxrelay.cli", "serve", "--port", str(self.port), "--log-level", "warning",
                 *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )

    def url(self, path: str = "/stt-stream") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout: float = 120.0) -> Gateway:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voxrelay serve exited with {self.proc.returncode}{self._last_output()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a starting process
        raise TimeoutError(f"voxrelay serve did not become ready{self._last_output()}")

    def _last_output(self, lines: int = 8) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        tail = self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        return (":\n" + "\n".join(tail)) if tail else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Gateway:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
