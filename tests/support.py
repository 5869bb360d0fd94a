"""Test helpers: a real voxrelay server on an ephemeral loopback port, corpus clips, WER."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import jiwer
import numpy as np
import pytest
import uvicorn
import websockets
from openai._models import validate_type
from openai.types.realtime import RealtimeServerEvent
from whisper_normalizer.english import EnglishTextNormalizer

from voxrelay.client import load_audio, to_linear16
from voxrelay.engines.base import Engine
from voxrelay.gateway.app import create_app
from voxrelay.security.limits import ws_max_size
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


def encode_container(pcm: np.ndarray, rate: int, fmt: str, channels: int = 1) -> bytes:
    """Opus in webm or ogg, made with PyAV (as MediaRecorder would)."""
    buf = io.BytesIO()
    layout = "mono" if channels == 1 else "stereo"
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = layout
        resampler = av.AudioResampler(format="s16", layout=layout, rate=48000)
        samples = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
        frames = [samples[i : i + 960] for i in range(0, len(samples), 960)]
        for block in [*frames, None]:
            if block is not None:
                frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout=layout)
                frame.sample_rate = rate
            for resampled in resampler.resample(frame if block is not None else None):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


# Upload formats as clients send them: (PyAV container format, codec, codec rate, file suffix).
FILE_FORMATS = {
    "wav": ("wav", "pcm_s16le", 16000, "wav"),
    "mp3": ("mp3", "libmp3lame", 16000, "mp3"),
    "flac": ("flac", "flac", 16000, "flac"),
    "ogg": ("ogg", "libopus", 48000, "ogg"),
    "m4a": ("ipod", "aac", 16000, "m4a"),
    "webm": ("webm", "libopus", 48000, "webm"),
}


def encode_file(pcm: np.ndarray, kind: str, rate: int = 16000) -> bytes:
    """Mono float32 `pcm` at `rate` as a whole file of `kind` (a key of FILE_FORMATS), made with PyAV."""
    fmt, codec, codec_rate, _suffix = FILE_FORMATS[kind]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=codec_rate)
        stream.layout = "mono"
        sample_format = "s16" if codec in ("pcm_s16le", "flac") else stream.format.name
        resampler = av.AudioResampler(format=sample_format, layout="mono", rate=codec_rate)
        samples = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
        for i in [*range(0, len(samples), 1024), None]:
            frame = None
            if i is not None:
                frame = av.AudioFrame.from_ndarray(samples[i : i + 1024].reshape(1, -1), format="s16", layout="mono")
                frame.sample_rate = rate
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def silence(seconds: float, rate: int = 16000) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def pink_noise(seconds: float, level: float = 0.05, rate: int = 16000, seed: int = 7) -> np.ndarray:
    """Pink (1/f) noise, RMS `level`: noise that is not speech."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return (noise / np.sqrt(np.mean(noise**2)) * level).astype(np.float32)


class ServerThread:
    """uvicorn serving a voxrelay app on 127.0.0.1:<ephemeral> in a background thread."""

    def __init__(self, settings: Settings | None = None, engine: Engine | None = None) -> None:
        self.app = create_app(settings or Settings(port=0), engine)
        # The server's message-size ceiling, as `voxrelay serve` sets it: an oversize frame is not buffered whole.
        max_size = ws_max_size(self.app.state.gateway.frame_limits)
        self.config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning", ws_max_size=max_size,
                                     ws="websockets-sansio")  # what `voxrelay serve` runs
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


async def until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until `condition()` holds: for state owned by the server thread's event loop.

    An asyncio.Event cannot be awaited across loops, so this polls; it fails with TimeoutError
    after `timeout` seconds instead of passing on a guess.
    """
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the state lives on another thread's loop
            await asyncio.sleep(0.01)


# Every WebSocket endpoint, as a client sees it: one test can run against each.


@dataclass(frozen=True)
class Endpoint:
    """How a client speaks to one endpoint: URL, credential scheme, start and stop frames, audio frames, error and
    final shapes, and the byte rate of the audio format the tests send."""

    label: str  # the metrics label
    path: str
    scheme: str  # Authorization scheme
    stop: str
    error_type: str
    bytes_per_s: int = 32000  # linear16 16 kHz; OpenAI's audio/pcm is 24 kHz

    def url(self, server: ServerThread, query: str = "") -> str:
        url = server.url(self.path)
        return url + ("&" if "?" in url else "?") + query if query else url

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"{self.scheme} {key}"} if key else {}

    async def start(self, ws: Any) -> None:
        if self.label == "stt-stream":
            linear16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}
            await ws.send(json.dumps({"action": "configure", "audio_format": linear16}))
        elif self.label == "v1-realtime":  # the client commits (no VAD): the tests' stop is a commit
            session = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            await ws.send(json.dumps({"type": "session.update", "session": session}))

    def frame(self, audio: bytes) -> bytes | str:
        """Audio as this endpoint's client sends it: a binary frame, or OpenAI's base64 append."""
        if self.label == "v1-realtime":
            return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()})
        return audio

    def check(self, message: dict[str, Any]) -> None:
        """OpenAI's events must pass the `openai` SDK's strict validation (its normal parsing accepts anything)."""
        if self.label == "v1-realtime":
            validate_type(type_=RealtimeServerEvent, value=message)  # type: ignore[arg-type]

    def ends(self, message: dict[str, Any]) -> bool:
        """The answer to `stop` is complete. OpenAI's protocol has no stop: the client closes after the commit's
        `completed`; the other endpoints close the socket themselves."""
        return self.label == "v1-realtime" and message["type"] == REALTIME_COMPLETED

    def errors(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in messages if m["type"] == self.error_type]

    def error_text(self, message: dict[str, Any]) -> str:
        if self.label == "v1-realtime":
            return str(message["error"]["message"])
        return str(message.get("message") if self.label == "stt-stream" else message.get("description"))

    def finals(self, messages: list[dict[str, Any]]) -> list[str]:
        if self.label == "stt-stream":
            return [m["transcript"] for m in messages if m["type"] == "final_transcript"]
        if self.label == "v1-realtime":
            return [m["transcript"] for m in messages if m["type"] == REALTIME_COMPLETED]
        return [
            m["channel"]["alternatives"][0]["transcript"] for m in messages if m["type"] == "Results" and m["is_final"]
        ]


REALTIME_COMPLETED = "conversation.item.input_audio_transcription.completed"
STT = Endpoint("stt-stream", "/stt-stream", "Bearer", json.dumps({"action": "stop"}), "error")
LISTEN = Endpoint(
    "v1-listen", "/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true", "Token",
    json.dumps({"type": "CloseStream"}), "Error",
)
REALTIME = Endpoint(
    "v1-realtime", "/v1/realtime?intent=transcription", "Bearer", json.dumps({"type": "input_audio_buffer.commit"}),
    "error", bytes_per_s=48000,
)
ENDPOINTS = [
    pytest.param(STT, id="stt-stream"), pytest.param(LISTEN, id="v1-listen"), pytest.param(REALTIME, id="v1-realtime")
]


async def read_all(ws: Any, endpoint: Endpoint | None = None, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Every message until the server closes, or until the answer to a stop is complete (then the client closes)."""
    messages = []
    try:
        async with asyncio.timeout(timeout):
            async for raw in ws:
                messages.append(json.loads(raw))
                if endpoint is not None:
                    endpoint.check(messages[-1])
                    if endpoint.ends(messages[-1]):
                        await ws.close()
                        break
    except websockets.ConnectionClosed:
        pass
    return messages


async def send_all(ws: Any, frames: list[bytes | str]) -> None:
    """Send every frame, or as many as the server takes before it closes."""
    try:
        for frame in frames:
            await ws.send(frame)
    except websockets.ConnectionClosed:
        pass  # refused mid-way: the caller reads why
