"""Local-engine benchmarks: latency, accuracy and capacity through `/stt-stream` at real-time pace.

Audio is paced like a live microphone: each 50 ms frame is sent when its last sample
would have been spoken, so stream time t is on the server at wall time ~t after the
first frame, and "end of speech at t" can be compared with arrival times directly.

During each capacity level the gateway's event-loop lag is read from its `/metrics`
(the `voxrelay_event_loop_lag_seconds` histogram, scraped before and after the level):
p50/p99 interpolated within the histogram's buckets, as Prometheus' histogram_quantile does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from voxrelay.bench.common import RATE, Clip, Gateway, percentile
from voxrelay.bench.realtime import measure_realtime
from voxrelay.client import StreamResult, stream_audio, to_linear16

__all__ = ["LagHistogram", "LocalResults", "capacity_sessions", "lag_columns", "run_local"]

LINEAR16 = {"encoding": "linear16", "sample_rate": RATE, "channels": 1}


@dataclass
class LocalResults:
    clips: list[str] = field(default_factory=list)
    final_after_stop_s: list[float] = field(default_factory=list)
    final_before_stop: int = 0  # sessions whose last final came before the stop (nothing pending)
    stopped_after_stop_s: list[float] = field(default_factory=list)
    speech_final_after_speech_end_s: list[float] = field(default_factory=list)
    first_interim_after_onset_s: list[float] = field(default_factory=list)
    first_delta_after_onset_s: list[float] = field(default_factory=list)  # /v1/realtime, same clips and pacing
    realtime_transcripts: list[str] = field(default_factory=list)
    realtime_wer: float | None = None
    streaming_transcripts: list[str] = field(default_factory=list)
    whole_file_transcripts: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    streaming_wer: float | None = None
    whole_file_wer: float | None = None
    endpointing_ms: int = 300
    keyterms: list[str] = field(default_factory=list)  # sent with every /stt-stream session (not /v1/realtime)
    capacity: list[dict[str, Any]] = field(default_factory=list)
    capacity_sessions: int | None = None

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float]) -> dict[str, float | None]:
            return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}

        return {
            "final_after_stop_s": pct(self.final_after_stop_s),
            "final_before_stop": self.final_before_stop,
            "stopped_after_stop_s": pct(self.stopped_after_stop_s),
            "speech_final_after_speech_end_s": pct(self.speech_final_after_speech_end_s),
            "first_interim_after_onset_s": pct(self.first_interim_after_onset_s),
            "first_delta_after_onset_s": pct(self.first_delta_after_onset_s),
            "realtime_wer": self.realtime_wer,
            "streaming_wer": self.streaming_wer,
            "whole_file_wer": self.whole_file_wer,
            "endpointing_ms": self.endpointing_ms,
            "keyterms": len(self.keyterms),
            "capacity_sessions": self.capacity_sessions,
            "capacity": self.capacity,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


async def _stream(url: str, pcm: np.ndarray, endpointing: int, keyterms: Sequence[str] = ()) -> StreamResult:
    configure: dict[str, Any] = {"audio_format": LINEAR16, "endpointing": endpointing}
    if keyterms:
        configure["keyterms"] = list(keyterms)
    return await stream_audio(url, to_linear16(pcm), configure=configure, chunk_bytes=1600)


def _final_after_stop(result: StreamResult) -> tuple[float | None, float | None]:
    if result.stop_sent_at is None:
        return None, None
    finals = [t for m, t in zip(result.messages, result.times, strict=True) if m["type"] == "final_transcript"]
    stopped = [t for m, t in zip(result.messages, result.times, strict=True) if m["type"] == "stopped"]
    # Only finals that arrive after the stop carry words that were pending at the stop; when the
    # last final came first (endpointing already ended the utterance), there is nothing to time.
    last_final = finals[-1] - result.stop_sent_at if finals and finals[-1] >= result.stop_sent_at else None
    return last_final, (stopped[0] - result.stop_sent_at) if stopped else None


async def measure_latency(url: str, clips: Sequence[Clip], results: LocalResults, tick: Callable[[], None]) -> None:
    """Stop right after the last word: how long until its final arrives."""
    for clip in clips:
        result = await _stream(url, clip.trimmed(), results.endpointing_ms, results.keyterms)
        final, stopped = _final_after_stop(result)
        if final is not None:
            results.final_after_stop_s.append(final)
        else:
            results.final_before_stop += 1
        if stopped is not None:
            results.stopped_after_stop_s.append(stopped)
        tick()


async def measure_endpointing(url: str, clips: Sequence[Clip], results: LocalResults, tick: Callable[[], None]) -> None:
    """Speech then 1.5 s of silence: the server's endpointing ends the utterance before any stop."""
    silence = np.zeros(int(1.5 * RATE), dtype=np.float32)
    for clip in clips:
        pcm = np.concatenate([clip.trimmed(), silence])
        result = await _stream(url, pcm, results.endpointing_ms, results.keyterms)
        timed = list(zip(result.messages, result.times, strict=True))
        speech_finals = [t for m, t in timed if m["type"] == "final_transcript" and m["speech_final"]]
        before_stop = [t for t in speech_finals if result.stop_sent_at is None or t <= result.stop_sent_at]
        if before_stop:
            results.speech_final_after_speech_end_s.append(before_stop[-1] - clip.speech_end)
        interims = [t for m, t in timed if m["type"] == "interim_transcript"]
        if interims:
            results.first_interim_after_onset_s.append(interims[0] - clip.speech_start)
        results.clips.append(clip.name)
        results.references.append(clip.reference)
        results.streaming_transcripts.append(result.transcript)
        tick()


@dataclass(frozen=True)
class LagHistogram:
    """The gateway's `voxrelay_event_loop_lag_seconds` as scraped: cumulative bucket counts, sum and count."""

    buckets: tuple[tuple[float, float], ...]  # (upper bound in seconds, cumulative count), ascending, +Inf last
    sum: float
    count: float

    NAME = "voxrelay_event_loop_lag_seconds"

    @classmethod
    def parse(cls, text: str) -> LagHistogram | None:
        """The histogram in a Prometheus text exposition, or None if the gateway does not export it."""
        for family in text_string_to_metric_families(text):
            if family.name != cls.NAME:
                continue
            buckets, total, count = [], 0.0, 0.0
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    buckets.append((float(sample.labels["le"]), sample.value))
                elif sample.name.endswith("_sum"):
                    total = sample.value
                elif sample.name.endswith("_count"):
                    count = sample.value
            return cls(tuple(sorted(buckets)), total, count)
        return None

    def since(self, earlier: LagHistogram) -> LagHistogram:
        """What was observed between the `earlier` scrape and this one."""
        before = dict(earlier.buckets)
        buckets = tuple((le, n - before.get(le, 0.0)) for le, n in self.buckets)
        return LagHistogram(buckets, self.sum - earlier.sum, self.count - earlier.count)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1), linear within its bucket; the highest finite bound if it lies in +Inf."""
        if self.count <= 0:
            return None
        rank = q * self.count
        lower, below = 0.0, 0.0
        for le, cumulative in self.buckets:
            if cumulative >= rank:
                if le == float("inf"):
                    return lower
                inside = cumulative - below
                return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
            lower, below = le, cumulative
        return lower


def lag_columns(before: LagHistogram | None, after: LagHistogram | None) -> dict[str, float | None]:
    """The loop-lag columns of a capacity row, in ms (None when the gateway exports no lag histogram)."""
    if before is None or after is None:
        return {"loop_lag_p50_ms": None, "loop_lag_p99_ms": None, "loop_lag_mean_ms": None, "loop_lag_samples": 0}
    level = after.since(before)
    p50, p99 = level.quantile(0.50), level.quantile(0.99)
    return {
        "loop_lag_p50_ms": None if p50 is None else p50 * 1000,
        "loop_lag_p99_ms": None if p99 is None else p99 * 1000,
        "loop_lag_mean_ms": level.sum / level.count * 1000 if level.count > 0 else None,
        "loop_lag_samples": int(level.count),
    }


async def _scrape_lag(metrics_url: str | None) -> LagHistogram | None:
    if metrics_url is None:
        return None
    async with httpx.AsyncClient() as client:
        response = await client.get(metrics_url, timeout=10)
    response.raise_for_status()
    return LagHistogram.parse(response.text)


async def measure_capacity(
    url: str,
    clips: Sequence[Clip],
    levels: Sequence[int],
    per_session: int,
    tick: Callable[[], None],
    metrics_url: str | None = None,
    keyterms: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """N concurrent real-time sessions; each streams `per_session` clips and stops after each.

    With `metrics_url` (the gateway's /metrics), each row also has the event-loop lag during its level.
    """
    rows = []
    for level in levels:
        lag_before = await _scrape_lag(metrics_url)
        outcomes = await asyncio.gather(
            *(_capacity_session(url, clips, per_session, i, keyterms) for i in range(level))
        )
        latencies = [final for finals, _, _ in outcomes for final in finals]
        # A session that needs over a second after stop is working through a backlog:
        # the engine has fallen behind real time.
        behind = sum(worst > 1.0 for _, worst, _ in outcomes)
        # How often a session's interim was refreshed: what a load takes from interims (finals keep priority).
        interims = sum(count for _, _, (count, _) in outcomes)
        audio_s = sum(seconds for _, _, (_, seconds) in outcomes)
        lag = lag_columns(lag_before, await _scrape_lag(metrics_url))
        rows.append(
            {
                "sessions": level,
                "final_after_stop_p50_s": percentile(latencies, 50),
                "final_after_stop_p95_s": percentile(latencies, 95),
                "sessions_behind": behind,
                "finals": len(latencies),
                "interims_per_audio_s": interims / audio_s if audio_s else None,
                **lag,
            }
        )
        tick()
    return rows


async def _capacity_session(
    url: str, clips: Sequence[Clip], per_session: int, index: int, keyterms: Sequence[str] = ()
) -> tuple[list[float], float, tuple[int, float]]:
    """One of N concurrent sessions: its finals-after-stop, its worst stop-to-stopped time, and
    (interims received, seconds of audio sent)."""
    finals, worst, interims, audio_s = [], 0.0, 0, 0.0
    for k in range(per_session):
        clip = clips[(index * per_session + k) % len(clips)]
        pcm = clip.trimmed()
        result = await _stream(url, pcm, 300, keyterms)
        final, stopped = _final_after_stop(result)
        if final is not None:
            finals.append(final)
        worst = max(worst, stopped if stopped is not None else 99.0)
        interims += sum(m["type"] == "interim_transcript" for m in result.messages)
        audio_s += len(pcm) / RATE
    return finals, worst, (interims, audio_s)


def whole_file_transcripts(clips: Sequence[Clip], model: str = "tiny.en") -> list[str]:
    """faster-whisper's own transcription of each whole file (its defaults: beam 5, 30 s windows)."""
    return whole_file_texts([clip.pcm for clip in clips], model)


def whole_file_texts(recordings: Sequence[np.ndarray], model: str = "tiny.en") -> list[str]:
    """`whole_file_transcripts` of float32 16 kHz recordings that are not corpus clips (e.g. a clip re-timed)."""
    from faster_whisper import WhisperModel

    from voxrelay.engines.local.model_files import resolve_model

    whisper = WhisperModel(resolve_model(model), device="cpu", compute_type="int8")
    out = []
    for pcm in recordings:
        segments, _ = whisper.transcribe(pcm, language="en")
        out.append(" ".join(s.text.strip() for s in segments))
    return out


def run_local(
    clips: Sequence[Clip],
    *,
    levels: Sequence[int],
    per_session: int,
    progress: Callable[[str, int], Callable[[], None]],
    gateway_args: Sequence[str] = (),
    keyterms: Sequence[str] = (),
) -> LocalResults:
    """`keyterms`: sent in every /stt-stream session's configure (a glossary's cost; /v1/realtime goes without)."""
    from voxrelay.bench.wer import wer

    results = LocalResults(keyterms=list(keyterms))
    with Gateway("--engine", "local", "--max-sessions", str(max([*levels, 1]) + 2), *gateway_args) as gateway:
        url = gateway.url()
        asyncio.run(measure_latency(url, clips, results, progress("final after stop", len(clips))))
        asyncio.run(measure_endpointing(url, clips, results, progress("endpointing + interims", len(clips))))
        results.first_delta_after_onset_s, results.realtime_transcripts = asyncio.run(
            measure_realtime(
                gateway.url("/v1/realtime?intent=transcription"), clips, results.endpointing_ms,
                progress("/v1/realtime deltas", len(clips)),
            )
        )
        if levels:
            results.capacity = asyncio.run(
                measure_capacity(
                    url, clips, levels, per_session, progress("capacity", len(levels)),
                    metrics_url=f"http://127.0.0.1:{gateway.port}/metrics", keyterms=keyterms,
                )
            )
    results.whole_file_transcripts = whole_file_transcripts(clips)
    results.streaming_wer = wer(results.references, results.streaming_transcripts)
    results.whole_file_wer = wer(results.references, results.whole_file_transcripts)
    results.realtime_wer = wer(results.references, results.realtime_transcripts)
    results.capacity_sessions = capacity_sessions(results.capacity)
    return results


def capacity_sessions(rows: Sequence[dict[str, Any]]) -> int:
    """The most concurrent sessions that passed: p95 final after stop <= 500 ms and no session behind."""
    passing = [
        row["sessions"]
        for row in rows
        if row["final_after_stop_p95_s"] is not None
        and row["final_after_stop_p95_s"] <= 0.5
        and row["sessions_behind"] == 0
    ]
    return max(passing) if passing else 0
