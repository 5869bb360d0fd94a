"""Prometheus metrics: one `Metrics` object (with its own registry) per app.

`create_app` builds a `Metrics` and serves `render()` at `/metrics`. Every endpoint's
connection runner reports through a `SessionMetrics` made by `Metrics.session(endpoint)`;
it calls its methods as the session's actions run: `audio_fed()` / `stop_requested()`
/ `sent(kind, code)`, `error(code)` for an error closed without a message, and
`closed(outcome)` once at the end (or `refused(code)` instead when it never started).
A registry per app, not prometheus_client's global one, lets several gateways run
in one process (tests) without duplicate-registration errors.

Every metric is named `voxrelay_*`. Labels have small fixed value sets: `engine`
(engine name), `endpoint` (`stt-stream`, `v1-listen`), `outcome`, `code`, `kind`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Literal

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from voxrelay.engines.base import EngineEvent, EngineObserver, EngineStream, EventSink
from voxrelay.ops.looplag import LAG_BUCKETS, LoopLagProbe

__all__ = [
    "CONTENT_TYPE", "CountingStream", "Endpoint", "FileStatus", "Metrics", "Outcome", "SentKind", "SessionMetrics",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

Endpoint = Literal["stt-stream", "v1-listen", "v1-realtime", "v1-audio-transcriptions"]
# How a file upload ended: ok; bad_request (bad file or field, 400/413); refused (401/429/503 before
# reading it); disconnected (the client left mid-stream); error (the engine failed).
FileStatus = Literal["ok", "bad_request", "refused", "disconnected", "error"]
SentKind = Literal["interim", "final", "error", "other"]
# stopped: the client stopped and got every final (close 1000); disconnected: the client went away
# first; error: the server ended it with an error (engine failure, limit, bad audio, deadline);
# refused: never started (at capacity, engine not ready, draining, bad credentials/parameters).
Outcome = Literal["stopped", "disconnected", "error", "refused"]

# Latency buckets (seconds): streaming ASR lives between ~50 ms and a few seconds.
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
_FILE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_ENGINE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)


class Metrics:
    """Every voxrelay metric, registered in `registry`.

    Args:
        engine: the engine name, the `engine` label of per-engine metrics.
        active_sessions: returns the number of live sessions (all endpoints); read at scrape time.
        registry: where to register; a new `CollectorRegistry` when None.
        process: also export process/platform/GC metrics (`process_*`, `python_*`).
    """

    def __init__(
        self,
        engine: str,
        active_sessions: Callable[[], int],
        registry: CollectorRegistry | None = None,
        *,
        process: bool = True,
    ) -> None:
        self.engine = engine
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        if process:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
            GCCollector(registry=r)

        # Capacity and state (the HPA / KEDA target is voxrelay_active_sessions).
        self.active_sessions = Gauge(
            "voxrelay_active_sessions", "Sessions open now, all endpoints (the autoscaling signal).", ["engine"],
            registry=r,
        )
        self.active_sessions.labels(engine).set_function(lambda: float(active_sessions()))
        self.max_sessions = Gauge("voxrelay_max_sessions", "The configured session cap of this instance.", registry=r)
        self.ready = Gauge("voxrelay_ready", "1 when /readyz says ready (engine loaded, not draining, below cap).",
                           registry=r)

        # Sessions.
        self.sessions = Counter(
            "voxrelay_sessions", "Sessions by how they ended (outcome: stopped, disconnected, error, refused).",
            ["engine", "endpoint", "outcome"], registry=r,
        )
        self.audio_seconds = Counter(
            "voxrelay_audio_seconds", "Seconds of client audio received (decoded PCM, or linear16 bytes / byte rate).",
            ["engine", "endpoint"], registry=r,
        )
        self.errors = Counter(
            "voxrelay_errors", "Errors reaching clients, by code: the session's error code on every endpoint "
            "(bad_request, limit_exceeded, engine_error, ...), or a refusal's code in the endpoint's words "
            "(stt-stream: unauthorized, draining, ...; v1-listen: INVALID_AUTH, TOO_MANY_REQUESTS, ...).",
            ["endpoint", "code"], registry=r,
        )

        # File uploads (POST /v1/audio/transcriptions); their audio counts in voxrelay_audio_seconds.
        self.file_jobs = Counter(
            "voxrelay_file_jobs", "File transcriptions by how they ended (status: ok, bad_request, refused, "
            "disconnected, error).", ["engine", "status"], registry=r,
        )
        self.file_decode = Histogram(
            "voxrelay_file_transcription_seconds", "From a decoded upload to its last segment (the engine's work "
            "on one file, queueing behind live sessions included).", ["engine"], buckets=_FILE_BUCKETS, registry=r,
        )

        # Latency seen by clients.
        self.first_interim = Histogram(
            "voxrelay_first_interim_seconds", "From a session's first audio frame to its first interim transcript.",
            ["engine", "endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.final_after_stop = Histogram(
            "voxrelay_final_after_stop_seconds",
            "From the client's stop to the first final transcript after it (sessions with speech pending).",
            ["engine", "endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )

        # The local engine's shared inference scheduler (kind: final or interim).
        self.engine_queue_wait = Histogram(
            "voxrelay_engine_queue_wait_seconds", "Time a decode job waited for the inference worker.",
            ["kind"], buckets=_ENGINE_BUCKETS, registry=r,
        )
        self.engine_decode = Histogram(
            "voxrelay_engine_decode_seconds", "Time a decode job ran on the inference worker.",
            ["kind"], buckets=_ENGINE_BUCKETS, registry=r,
        )

        # Upstream and tokens: incremented by the Deepgram engine's reconnect logic and the token
        # endpoint (see the docstrings of `upstream_reconnect` and `token_minted`/`token_refused`).
        self.upstream_reconnects = Counter(
            "voxrelay_upstream_reconnects", "Reconnects of an engine's upstream stream (e.g. to Deepgram), by result.",
            ["engine", "result"], registry=r,
        )
        self.tokens_minted = Counter(
            "voxrelay_tokens_minted", "Short-lived client tokens minted.", ["kind"], registry=r,
        )
        self.tokens_refused = Counter(
            "voxrelay_tokens_refused", "Client tokens or token requests refused, by reason.", ["reason"], registry=r,
        )

        # Usage metering (voxrelay.usage): the database's failures and the records waiting for it.
        self.usage_db_errors = Counter(
            "voxrelay_usage_db_errors", "Failed or timed-out operations on the usage database (operation: migrate, "
            "write, read); sessions go on and records wait in memory.", ["operation"], registry=r,
        )
        self.usage_pending = Gauge(
            "voxrelay_usage_pending_records", "Ended sessions' usage records not yet written to the database.",
            registry=r,
        )
        self.usage_dropped = Counter(
            "voxrelay_usage_records_dropped", "Usage records dropped because the in-memory buffer was full "
            "while the database was away (VOXRELAY_USAGE_BUFFER).", registry=r,
        )

        # The event loop: how late it runs a timer (sampled every 50 ms by `loop_lag`, started in the app lifespan).
        self.event_loop_lag = Histogram(
            "voxrelay_event_loop_lag_seconds", "How much later than asked the event loop woke a 50 ms timer.",
            buckets=LAG_BUCKETS, registry=r,
        )
        self.loop_lag = LoopLagProbe(self.event_loop_lag)

    # Public methods for the code that counts.

    def session(self, endpoint: Endpoint) -> SessionMetrics:
        """A recorder for one connection on `endpoint`."""
        return SessionMetrics(self, endpoint)

    def file_job(
        self, status: FileStatus, *, code: str | None = None, audio_s: float | None = None,
        decode_s: float | None = None, endpoint: str = "v1-audio-transcriptions",
    ) -> None:
        """One upload ended: its status, the error code sent (if any), its audio and decode seconds (if it ran).

        `endpoint` labels the errors and audio seconds (`v1-listen` for Deepgram's pre-recorded POST).
        """
        self.file_jobs.labels(self.engine, status).inc()
        if code is not None:
            self.errors.labels(endpoint, code).inc()
        if audio_s:
            self.audio_seconds.labels(self.engine, endpoint).inc(audio_s)
        if decode_s is not None:
            self.file_decode.labels(self.engine).observe(decode_s)

    def observe_job(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        """One inference job of the local engine (called on its worker thread)."""
        self.engine_queue_wait.labels(kind).observe(wait_s)
        self.engine_decode.labels(kind).observe(run_s)

    def upstream_reconnect(self, result: Literal["ok", "failed", "gave_up"]) -> None:
        """Call once per reconnect attempt of an upstream engine stream (the Deepgram engine)."""
        self.upstream_reconnects.labels(self.engine, result).inc()

    def token_minted(self, kind: str = "session") -> None:
        """Call when the token endpoint issues a token (`kind`: e.g. `session`, `deepgram`)."""
        self.tokens_minted.labels(kind).inc()

    def token_refused(self, reason: str) -> None:
        """Call when a token is refused (`reason`: a short fixed word: expired, invalid, reused, unauthorized)."""
        self.tokens_refused.labels(reason).inc()

    def usage_db_error(self, operation: str) -> None:
        """An operation on the usage database failed or timed out (`operation`: migrate, write, read)."""
        self.usage_db_errors.labels(operation).inc()

    # Public methods for the /metrics endpoint.

    def render(self) -> bytes:
        """The text exposition of every metric in this registry."""
        return generate_latest(self.registry)


class SessionMetrics:
    """What one connection reports. Safe to call in any order; `closed`/`refused` count once."""

    def __init__(self, metrics: Metrics, endpoint: Endpoint) -> None:
        self._m = metrics
        self._endpoint = endpoint
        self._first_audio: float | None = None
        self._interim_seen = False
        self._stop: float | None = None
        self._final_after_stop_seen = False
        self._done = False

    @property
    def endpoint(self) -> Endpoint:
        return self._endpoint

    def audio_fed(self) -> None:
        """An audio frame went to the engine (the first one starts the first-interim clock)."""
        if self._first_audio is None:
            self._first_audio = time.perf_counter()

    def stop_requested(self) -> None:
        """The client said stop (the engine is closing): starts the final-after-stop clock."""
        if self._stop is None:
            self._stop = time.perf_counter()

    def sent(self, kind: SentKind, code: str | None = None) -> None:
        """A frame is about to be sent: an interim or final transcript, an error (with its code), or other."""
        if kind == "interim":
            if not self._interim_seen and self._first_audio is not None:
                self._interim_seen = True
                self._m.first_interim.labels(self._m.engine, self._endpoint).observe(
                    time.perf_counter() - self._first_audio
                )
        elif kind == "final":
            if self._stop is not None and not self._final_after_stop_seen:
                self._final_after_stop_seen = True
                self._m.final_after_stop.labels(self._m.engine, self._endpoint).observe(
                    time.perf_counter() - self._stop
                )
        elif kind == "error":
            self.error(code or "unknown")

    def error(self, code: str) -> None:
        """An error reached the client (`code`: a protocol error code or an HTTP status)."""
        self._m.errors.labels(self._endpoint, code).inc()

    def refused(self, code: str) -> None:
        """The connection was turned away before a session started."""
        if not self._done:
            self._done = True
            self.error(code)
            self._m.sessions.labels(self._m.engine, self._endpoint, "refused").inc()

    def closed(self, outcome: Outcome, audio_seconds: float | None) -> None:
        """The session ended; `audio_seconds` is what it received (None if unknown)."""
        if self._done:
            return
        self._done = True
        self._m.sessions.labels(self._m.engine, self._endpoint, outcome).inc()
        if audio_seconds:
            self._m.audio_seconds.labels(self._m.engine, self._endpoint).inc(audio_seconds)


class CountingStream(EngineStream):
    """An engine stream that counts the audio it is given, for `voxrelay_audio_seconds`.

    Args:
        inner: the engine's stream.
        pcm_rate: the sample rate of float32 PCM arrays (the engine's rate).
        bytes_per_second: the byte rate of raw audio bytes (linear16), or None for containers.
    """

    def __init__(self, inner: EngineStream, pcm_rate: int, bytes_per_second: int | None) -> None:
        self.inner = inner
        self._pcm_rate = pcm_rate
        self._bytes_per_second = bytes_per_second
        self._samples = 0
        self._bytes = 0

    def send_audio(self, audio: bytes | np.ndarray) -> Coroutine[Any, Any, None]:
        """Count, then hand back the inner stream's own coroutine (awaited by the caller): a coroutine
        layer per relayed audio frame less than `async def` + `await` (issue 17)."""
        if isinstance(audio, np.ndarray):
            self._samples += int(audio.shape[0])
        else:
            self._bytes += len(audio)
        return self.inner.send_audio(audio)

    async def finalize(self) -> None:
        await self.inner.finalize()

    async def close(self) -> None:
        await self.inner.close()

    async def abort(self) -> None:
        await self.inner.abort()

    def events(self) -> AsyncIterator[EngineEvent]:
        return self.inner.events()

    def push_events(self, sink: EventSink) -> bool:
        return self.inner.push_events(sink)

    def audio_seconds(self) -> float | None:
        """Seconds received so far; None when only container bytes to a raw-audio engine were seen."""
        seconds = self._samples / self._pcm_rate if self._pcm_rate else 0.0
        if self._bytes:
            if not self._bytes_per_second:
                return seconds or None
            seconds += self._bytes / self._bytes_per_second
        return seconds


class MetricsObserver(EngineObserver):
    """The engine's observer hooks, recorded as `Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        self._metrics.observe_job(kind, wait_s, run_s)

    def upstream_reconnect(self, result: Literal["ok", "failed", "gave_up"]) -> None:
        self._metrics.upstream_reconnect(result)
