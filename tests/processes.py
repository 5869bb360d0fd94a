"""`voxrelay serve` in a subprocess (the deepgram engine against a fake Deepgram): signal, kill and restart tests."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


class GatewayProcess:
    """A real gateway process; its log lines are events the test waits on."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._seen = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.port = 0

    @classmethod
    async def start(cls, deepgram_url: str, env: dict[str, str], workers: int = 1) -> GatewayProcess:
        """Start `voxrelay serve` and wait until it serves (with `workers` > 1: until every worker's engine is ready)."""
        cli = Path(sys.executable).with_name("voxrelay")  # the venv's console script: the real entry point
        environment = {
            **os.environ,
            "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
            "DEEPGRAM_API_KEY": "fake-key",
            "VOXRELAY_DEEPGRAM_URL": deepgram_url,
            **env,
        }
        proc = await asyncio.create_subprocess_exec(
            str(cli), "serve", "--engine", "deepgram", "--port", "0", "--log-format", "text", "--log-level", "info",
            *(["--workers", str(workers)] if workers > 1 else []), env=environment, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        gateway = cls(proc)
        if workers > 1:
            serving = await gateway.wait_for_line(r"serving on http://127\.0\.0\.1:(\d+) with")
            gateway.port = int(serving.group(1))
            await gateway.wait_for_lines(r"engine deepgram ready", workers)
            return gateway
        gateway.port = int((await gateway.wait_for_line(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")).group(1))
        await gateway.wait_for_line(r"engine deepgram ready")
        return gateway

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def http(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            async with self._seen:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._seen.notify_all()
        async with self._seen:
            self._seen.notify_all()

    async def wait_for_line(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first log line matching `pattern` (waits for it; fails if the process ends first)."""
        regex = re.compile(pattern)
        async with asyncio.timeout(timeout), self._seen:
            while True:
                for line in self.lines:
                    if found := regex.search(line):
                        return found
                assert not self._reader.done(), f"gateway exited before {pattern!r}:\n" + "\n".join(self.lines)
                await self._seen.wait()

    async def wait_for_lines(self, pattern: str, count: int, timeout: float = 30.0) -> list[re.Match[str]]:
        """The first `count` log lines matching `pattern` (waits for them; fails if the process ends first)."""
        regex = re.compile(pattern)
        async with asyncio.timeout(timeout), self._seen:
            while True:
                found = [m for line in self.lines if (m := regex.search(line))]
                if len(found) >= count:
                    return found[:count]
                assert not self._reader.done(), f"gateway exited before {count} x {pattern!r}:\n" + "\n".join(
                    self.lines
                )
                await self._seen.wait()

    async def kill(self) -> None:
        """SIGKILL: no drain, no last write."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._reader

    async def terminate(self) -> int:
        """SIGTERM: the gateway drains and writes its last figures; returns the exit status."""
        if self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()
        await self._reader
        assert self.proc.returncode is not None
        return self.proc.returncode
