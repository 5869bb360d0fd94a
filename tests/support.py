"""Test helpers: a real voxrelay server on an ephemeral loopback port, corpus clips, WER."""

from __future__ import annotations

import asyncio
import csv
import threading
from dataclasses import dataclass
from pathlib import Path

import jiwer
import numpy as np
import uvicorn
from whisper_normalizer.english import EnglishTextNormalizer

from voxrelay.client import load_audio, to_linear16
from voxrelay.engines.base import Engine
from voxrelay.server import create_app
from voxrelay.settings import Settings

AUDIO = Path(__file__).parent / "fixtures" / "audio"
_normalize = EnglishTextNormalizer()


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    subset: str
    duration: float
    reference: str

    def pcm(self, rate: int = 16000) -> np.ndarray:
        return load_audio(str(self.path), rate)

    def linear16(self) -> bytes:
        return to_linear16(self.pcm())


def clips(subset: str | None = None) -> list[Clip]:
    with open(AUDIO / "refs.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [
        Clip(r["file"], AUDIO / r["file"], r["subset"], float(r["duration_s"]), r["reference_transcript"])
        for r in rows
        if subset is None or r["subset"] == subset
    ]


def clip(name: str) -> Clip:
    return next(c for c in clips() if c.name == name)


def normalize(text: str) -> str:
    return " ".join(_normalize(text).split())


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Pooled word error rate after Whisper's English normalization."""
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    return float(jiwer.wer(refs, hyps))


class ServerThread:
    """uvicorn serving a voxrelay app on 127.0.0.1:<ephemeral> in a background thread."""

    def __init__(self, settings: Settings | None = None, engine: Engine | None = None) -> None:
        self.app = create_app(settings or Settings(port=0), engine)
        self.config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", ws_max_size=1 << 20)
        self.server = uvicorn.Server(self.config)
        self._thread = threading.Thread(target=self.server.run, name="voxrelay-test-server", daemon=True)
        self.port = 0

    def start(self, timeout: float = 60.0) -> ServerThread:
        self._thread.start()
        started = threading.Event()

        def wait_started() -> None:
            while not self.server.started:
                if not self._thread.is_alive():
                    return
                started.wait(0.02)

        wait_started()
        if not self.server.started:
            raise RuntimeError("voxrelay test server failed to start")
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        gateway = self.app.state.gateway
        # Wait for the engine, as a client would poll /healthz.
        ready = threading.Event()
        for _ in range(int(timeout / 0.05)):
            if gateway.ready or gateway.start_error:
                break
            ready.wait(0.05)
        return self

    @property
    def gateway(self):  # type: ignore[no-untyped-def]
        return self.app.state.gateway

    def url(self, path: str = "/stt-stream") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def http(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
