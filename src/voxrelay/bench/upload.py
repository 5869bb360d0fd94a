"""Does an upload delay live dictation? Live final-after-stop with and without a concurrent file upload.

N live sessions stream corpus clips at real-time pace through `/stt-stream` and stop right after
the last word (as `local.measure_latency` does), twice: alone, then while a long upload
(corpus clips concatenated to `upload_s` seconds, as WAV) is transcribed through
`POST /v1/audio/transcriptions` on the same gateway. The second pass keeps streaming until the
upload's answer arrives and counts only the stops that happened before it, so every measured
final competed with the file. The file's decode runs on the shared scheduler below live jobs,
one Whisper window per job: the expected cost to a live final is one window's decode at most.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np

from voxrelay.bench.common import RATE, Clip, Gateway, percentile
from voxrelay.bench.local import _final_after_stop, _stream

__all__ = ["UploadResults", "run_upload"]


@dataclass
class UploadResults:
    sessions: int = 0
    alone_s: list[float] = field(default_factory=list)  # final after stop, live sessions alone
    with_upload_s: list[float] = field(default_factory=list)  # the same while the upload decodes
    upload_audio_s: float = 0.0
    upload_wall_s: float = 0.0  # request sent to answer received
    upload_wer: float | None = None
    upload_status: int = 0

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float]) -> dict[str, float | None]:
            return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}

        rtf = self.upload_wall_s / self.upload_audio_s if self.upload_audio_s else None
        return {
            "sessions": self.sessions,
            "alone": pct(self.alone_s),
            "with_upload": pct(self.with_upload_s),
            "upload_audio_s": self.upload_audio_s,
            "upload_wall_s": self.upload_wall_s,
            "upload_rtf": rtf,
            "upload_wer": self.upload_wer,
            "upload_status": self.upload_status,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def _wav(pcm: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def long_recording(clips: Sequence[Clip], seconds: float) -> tuple[np.ndarray, list[str]]:
    """Corpus clips one after another (0.5 s apart) until `seconds`; and the references of those used."""
    pieces: list[np.ndarray] = []
    references: list[str] = []
    total, gap = 0, np.zeros(RATE // 2, dtype=np.float32)
    while total < seconds * RATE:
        clip = clips[len(references) % len(clips)]
        pieces += [clip.pcm, gap]
        references.append(clip.reference)
        total += len(clip.pcm) + len(gap)
    return np.concatenate(pieces), references


async def _session(
    url: str, clips: Sequence[Clip], index: int, rounds: int, until: asyncio.Event | None
) -> list[float]:
    """One live session: `rounds` clips (alone), or clips until `until` is set (only stops before it count)."""
    finals: list[float] = []
    k = 0
    while (until is None and k < rounds) or (until is not None and not until.is_set()):
        clip = clips[(index * 7 + k) % len(clips)]
        k += 1
        result = await _stream(url, clip.trimmed(), 300)
        final, _ = _final_after_stop(result)
        if final is not None and (until is None or not until.is_set()):
            finals.append(final)
    return finals


async def _measure(
    gateway_port: int, clips: Sequence[Clip], sessions: int, rounds: int, upload_s: float, results: UploadResults,
    tick: Callable[[], None],
) -> None:
    url = f"ws://127.0.0.1:{gateway_port}/stt-stream"
    alone = await asyncio.gather(*(_session(url, clips, i, rounds, None) for i in range(sessions)))
    results.alone_s = [f for finals in alone for f in finals]
    tick()
    audio, references = long_recording(clips, upload_s)
    results.upload_audio_s = len(audio) / RATE
    done = asyncio.Event()

    async def upload() -> None:
        started = time.perf_counter()
        try:
            async with httpx.AsyncClient(timeout=None) as client:
                response = await client.post(
                    f"http://127.0.0.1:{gateway_port}/v1/audio/transcriptions",
                    data={"model": "whisper-1", "response_format": "json"},
                    files={"file": ("long.wav", _wav(audio), "audio/wav")},
                )
        finally:
            results.upload_wall_s = time.perf_counter() - started
            done.set()
        results.upload_status = response.status_code
        if response.status_code == 200:
            from voxrelay.bench.wer import wer

            results.upload_wer = wer([" ".join(references)], [response.json()["text"]])

    uploading = asyncio.create_task(upload())
    during = await asyncio.gather(*(_session(url, clips, i, rounds, done) for i in range(sessions)))
    await uploading
    results.with_upload_s = [f for finals in during for f in finals]
    tick()


def run_upload(
    clips: Sequence[Clip],
    *,
    sessions: int,
    rounds: int,
    upload_s: float,
    progress: Callable[[str, int], Callable[[], None]],
    gateway_args: Sequence[str] = (),
) -> UploadResults:
    results = UploadResults(sessions=sessions)
    with Gateway("--engine", "local", "--max-sessions", str(sessions + 2), *gateway_args) as gateway:
        tick = progress("live sessions alone, then with an upload", 2)
        asyncio.run(_measure(gateway.port, clips, sessions, rounds, upload_s, results, tick))
    return results
