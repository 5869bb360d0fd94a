"""`voxrelay serve --workers N`: a supervisor and N gateway processes on one port, so a box uses all its cores.

The supervisor binds N listening sockets to the same address with SO_REUSEPORT (one per worker
slot) and starts each worker as `voxrelay serve` with its slot's socket inherited. The kernel
hashes each new connection's addresses to one of the N sockets: connections spread evenly even
in a connect storm, whatever each worker is busy with. (One shared socket would instead be
drained by whichever worker wakes first, in bursts of up to its accept backlog: docs/deploy.md
has the measured spread of both.) The supervisor keeps its copy of every slot's socket, so a
restarted worker takes over its slot's queue and connections hashed to it wait instead of
being reset.

The supervisor:
- starts the workers with `VOXRELAY_TOKEN_SECRET` (given, or made here and never logged) and a
  used-token file (`security/used_tokens.py`), so a token minted by one worker is redeemed,
  once, by any;
- restarts a worker that exits unless it is stopping (logged; a worker that dies within
  `_QUICK_CRASH_S` of its start is restarted after a growing delay); a worker that refuses to
  start (exit status 2: settings, a database of a newer voxrelay) stops them all;
- on SIGTERM or SIGINT sends SIGTERM to every worker, which drains (`ops/drain.py`: live sessions
  finish), and exits when all have; a second signal is passed on too (the workers exit at once).

Each worker is a whole gateway: its own session caps, handshake limits and `/metrics` registry. A
scrape of any worker shows every worker's series, labelled `worker` (`ops/box_metrics.py`): each
serves its registry to the others on a unix socket in the supervisor's private folder.
Workers run in their own session (a terminal's Ctrl+C reaches the supervisor only, which passes
it on once) and die with the supervisor (`follow_supervisor`: Linux's parent-death signal).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from voxrelay.security import used_tokens

__all__ = ["Supervisor", "WorkerSlot", "bind_slots", "follow_supervisor", "worker_command"]

log = logging.getLogger("voxrelay.ops.workers")

_QUICK_CRASH_S = 10.0  # a worker that dies sooner after its start is restarted after a delay
_MAX_RESTART_DELAY_S = 30.0
_REFUSED = 2  # `voxrelay serve`'s exit status for settings it refuses
_USED_TOKENS = "used-tokens.db"  # in the runtime folder


@dataclass(frozen=True)
class WorkerSlot:
    """What a worker process is told by its supervisor (the hidden `serve --worker-slot` argument)."""

    index: int
    workers: int  # how many slots the box has (indices 0 .. workers - 1)
    fd: int  # the inherited listening socket
    supervisor_pid: int
    runtime_dir: Path  # the supervisor's private folder (mode 0700): used tokens, metrics sockets

    @property
    def used_tokens(self) -> Path:
        """The box's used-token file (`security/used_tokens.py`)."""
        return self.runtime_dir / _USED_TOKENS

    def to_arg(self) -> str:
        return f"{self.index},{self.workers},{self.fd},{self.supervisor_pid},{self.runtime_dir}"

    @classmethod
    def from_arg(cls, text: str) -> WorkerSlot:
        index, workers, fd, pid, path = text.split(",", 4)
        return cls(int(index), int(workers), int(fd), int(pid), Path(path))


def bind_slots(
    host: str, port: int, count: int, *, reuse_port: bool = True, backlog: int = 2048
) -> list[socket.socket]:
    """`count` listening sockets on one address (port 0: the first one's); one shared socket if not `reuse_port`."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count if reuse_port else 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.listen(backlog)  # connections queue from now on, before the workers accept
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets if reuse_port else sockets * count


def follow_supervisor(supervisor_pid: int) -> None:
    """In a worker: get SIGTERM (a drain) when the supervisor dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != supervisor_pid:  # it died before the call above
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class _Worker:
    slot: WorkerSlot
    proc: subprocess.Popen[bytes]
    started: float
    quick_crashes: int = 0


class Supervisor:
    """Runs a worker per socket of `sockets` (from `bind_slots`), each `[*command, --worker-slot SLOT]`, until a
    signal; `run` returns the exit status.

    Args:
        command: the worker's command line without its slot (`worker_command`).
        sockets: one listening socket per worker (the same one repeated when they share it).
        token_secret: the workers' token key; empty = a random one made here.
    """

    def __init__(self, command: list[str], sockets: list[socket.socket], token_secret: str = "") -> None:
        self.command = command
        self.sockets = sockets
        # Mode 0700 (mkdtemp): only this user reaches the used-token file and the workers' metrics sockets.
        self._scratch = Path(tempfile.mkdtemp(prefix="voxrelay-workers-"))
        used_tokens.create(self._scratch / _USED_TOKENS)
        self._env = {k: v for k, v in os.environ.items() if k != "VOXRELAY_WORKERS"}
        self._env["VOXRELAY_TOKEN_SECRET"] = token_secret or secrets.token_urlsafe(32)
        self._workers: dict[int, _Worker] = {}  # pid -> worker
        self._signals = 0
        self._status = 0

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            for index, sock in enumerate(self.sockets):
                self._start(WorkerSlot(index, len(self.sockets), sock.fileno(), os.getpid(), self._scratch))
            while self._workers:
                pid, status = os.wait()  # a signal runs its handler and the wait goes on (PEP 475)
                worker = self._workers.pop(pid, None)
                if worker is not None:
                    self._ended(worker, os.waitstatus_to_exitcode(status))
        finally:
            for sock in {id(s): s for s in self.sockets}.values():
                sock.close()
            shutil.rmtree(self._scratch, ignore_errors=True)
        log.warning("all workers exited; stopping (status %d)", self._status)
        return self._status

    def _start(self, slot: WorkerSlot, quick_crashes: int = 0) -> None:
        proc = subprocess.Popen(
            [*self.command, "--worker-slot", slot.to_arg()], env=self._env, pass_fds=(slot.fd,),
            start_new_session=True, stdin=subprocess.DEVNULL,
        )
        self._workers[proc.pid] = _Worker(slot, proc, time.monotonic(), quick_crashes)
        log.info("worker %d started (pid %d)", slot.index, proc.pid)

    def _ended(self, worker: _Worker, code: int) -> None:
        worker.proc.returncode = code  # reaped by os.wait: Popen must not wait for it again
        index, pid = worker.slot.index, worker.proc.pid
        if self._signals:
            log.warning("worker %d (pid %d) exited with status %d", index, pid, code)
            self._status = max(self._status, 0 if code in (0, -signal.SIGTERM) else 1)
            return
        if code == _REFUSED:
            log.error("worker %d (pid %d) refused to start (status 2): stopping every worker", index, pid)
            self._status = _REFUSED
            self._on_signal(signal.SIGTERM, None)
            return
        quick = time.monotonic() - worker.started < _QUICK_CRASH_S
        crashes = worker.quick_crashes + 1 if quick else 0
        delay = min(_MAX_RESTART_DELAY_S, 2.0 ** (crashes - 1)) if crashes else 0.0
        log.error("worker %d (pid %d) exited unexpectedly (status %d); restarting it%s",
                  index, pid, code, f" in {delay:g} s" if delay else "")
        time.sleep(delay)  # a signal meanwhile runs its handler; the sleep goes on
        if not self._signals:
            self._start(worker.slot, crashes)

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning("%s: draining %d worker(s)", signal.Signals(sig).name, len(self._workers))
        for worker in self._workers.values():
            with contextlib.suppress(ProcessLookupError):
                worker.proc.send_signal(signal.SIGTERM)


def worker_command(serve_flags: list[str]) -> list[str]:
    """The worker command line for the supervisor's own `serve` flags."""
    return [sys.executable, "-m", "voxrelay.cli", "serve", *serve_flags, "--workers", "1"]
