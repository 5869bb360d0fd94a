"""Fixtures for the real-browser tests: the built web UI, a `voxrelay serve` subprocess,
and headless Debian Chromium (driven by the Python `playwright` package, no browser download)
with a fake microphone that plays a WAV file.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB_DIR = ROOT / "src" / "voxrelay" / "web"
CHROMIUM = Path(os.environ.get("VOXRELAY_CHROMIUM", "/usr/bin/chromium"))

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} not found: install Debian chromium (apt-get install chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def web_ui() -> Path:
    """The web UI built into src/voxrelay/web (scripts/build-web.sh is quick when up to date)."""
    if shutil.which("npm"):
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "build-web.sh")], capture_output=True, text=True, timeout=900
        )
        if result.returncode != 0:
            pytest.fail(f"scripts/build-web.sh failed:\n{result.stdout}\n{result.stderr}")
    if not (WEB_DIR / "index.html").is_file():
        pytest.fail(f"the web UI is not built ({WEB_DIR}/index.html missing) and npm is not available to build it")
    return WEB_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _voxrelay_command() -> list[str]:
    script = Path(sys.executable).parent / "voxrelay"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from voxrelay.cli import main; sys.exit(main())"]


@dataclass
class Gateway:
    """A `voxrelay serve --port N` subprocess with the local engine, serving the web UI."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_healthy(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"voxrelay serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"voxrelay serve was not healthy within {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def spawn_gateway(web_dir: Path, log_dir: Path, env: dict[str, str] | None = None) -> Gateway:
    """Start `voxrelay serve` on a free port with the local engine and wait until /healthz is 200.

    `env` adds variables (e.g. `VOXRELAY_API_KEYS`) to the subprocess's environment.
    """
    port = free_port()
    log_path = log_dir / "serve.log"
    env = {**os.environ, "VOXRELAY_WEB_DIR": str(web_dir), **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [*_voxrelay_command(), "serve", "--port", str(port), "--engine", "local"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    gateway = Gateway(port, process, log_path)
    try:
        gateway.wait_healthy()
    except BaseException:
        gateway.stop()
        raise
    return gateway


@pytest.fixture(scope="module")
def gateway(web_ui: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One gateway shared by a module's dictation tests (the model loads once)."""
    gw = spawn_gateway(web_ui, tmp_path_factory.mktemp("gateway"))
    yield gw
    gw.stop()


# A key only these tests know; the gateway below requires it (auth on, although on loopback).
TEST_API_KEY = "vxk_e2e_" + secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def auth_gateway(web_ui: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway with `VOXRELAY_API_KEYS=TEST_API_KEY`: browsers need a key to mint tokens."""
    gw = spawn_gateway(web_ui, tmp_path_factory.mktemp("auth-gateway"), {"VOXRELAY_API_KEYS": TEST_API_KEY})
    yield gw
    gw.stop()


@pytest.fixture
def start_gateway(web_ui: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Gateway]]:
    """Start gateways a test may stop itself; any still running are stopped after it."""
    started: list[Gateway] = []

    def start() -> Gateway:
        started.append(spawn_gateway(web_ui, tmp_path_factory.mktemp("gateway")))
        return started[-1]

    yield start
    for gw in started:
        gw.stop()


def padded_wav(source: Path, target: Path, before_s: float = 1.0, after_s: float = 2.0) -> float:
    """Write `source` as 16-bit PCM WAV with silence around it; returns the clip's duration.

    Chromium's fake microphone loops the file and plays silence, without an error,
    for anything but 16-bit PCM WAV; the trailing silence keeps the loop from
    restarting the speech before the test presses stop.
    """
    with wave.open(str(source), "rb") as src:
        if src.getsampwidth() != 2 or src.getcomptype() != "NONE":
            raise ValueError(f"{source} must be 16-bit PCM WAV")
        rate, channels = src.getframerate(), src.getnchannels()
        frames = src.readframes(src.getnframes())
        duration = src.getnframes() / rate
    silence = lambda seconds: b"\0" * (int(seconds * rate) * channels * 2)  # noqa: E731
    with wave.open(str(target), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(silence(before_s) + frames + silence(after_s))
    return duration


# Module scope, not session: while sync_playwright is open it keeps an asyncio loop running in
# the main thread, which would break every later test that calls asyncio.run().
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        pytest.fail("the e2e tests need the Python playwright package: pip install -e '.[test]' (no browser download)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def launch_chromium(playwright_driver, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Launch headless Chromium whose fake microphone plays `audio` (a 16-bit PCM WAV)."""
    contexts = []

    def launch(audio: Path | None = None):  # type: ignore[no-untyped-def]
        args = list(CHROMIUM_ARGS)
        if audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={audio}")
        profile = tmp_path / f"profile-{len(contexts)}"
        context = playwright_driver.chromium.launch_persistent_context(  # type: ignore[attr-defined]
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=args,
        )
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()
