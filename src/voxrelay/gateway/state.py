"""What every connection of one app shares: settings, the engine, admission, the live sessions, metrics."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from voxrelay.engines.base import Engine, StreamConfig
from voxrelay.ops.box_metrics import BoxMetrics
from voxrelay.ops.drain import Drainer
from voxrelay.ops.metrics import Metrics
from voxrelay.protocol import messages as m
from voxrelay.security.admission import Admission, CredentialForm, Gatekeeper, Handshake, Refusal
from voxrelay.security.limits import FrameLimits
from voxrelay.settings import Settings
from voxrelay.usage.database import create_engine, database_url
from voxrelay.usage.meter import ANONYMOUS, Meter

__all__ = ["Gateway"]


class Gateway:
    """Shared by every endpoint: one engine, one admission path, one session count, one metrics registry."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: set[str] = set()
        self.file_jobs = 0  # uploads being transcribed now (POST /v1/audio/transcriptions, POST /v1/listen)
        self.start_error: str | None = None
        self.frame_limits = FrameLimits(settings.max_text_frame, settings.max_audio_frame)
        self.gatekeeper = Gatekeeper(settings)
        # A drain waits for uploads being transcribed too: their answers are as much in flight as a live final.
        self.drainer = Drainer(settings.drain_timeout_s, lambda: len(self.sessions) + self.file_jobs)
        self.metrics = Metrics(engine.name, lambda: len(self.sessions))
        self.metrics.max_sessions.set(settings.max_sessions)
        self.usage = Meter(settings, create_engine(database_url(settings)), self.metrics)
        # Set by `serve --workers N` in each worker (cli.py): /metrics then answers for the whole box.
        self.box_metrics: BoxMetrics | None = None

    @property
    def ready(self) -> bool:
        return self.engine.ready

    @property
    def draining(self) -> bool:
        """True once a drain began: not ready, new sessions refused (docs/reliability.md)."""
        return self.drainer.draining

    @property
    def engine_error(self) -> str | None:
        """Why the engine cannot take a session now; None when it can."""
        if self.ready:
            return None
        return self.start_error or "the engine is still starting; try again shortly"

    def admit(self, connection: HTTPConnection, form: CredentialForm) -> Admission:
        """Admit one handshake in the order every endpoint shares; raises `Refusal` with the reason."""
        return self._admit(connection, form, file_jobs=None)

    def _admit(self, connection: HTTPConnection, form: CredentialForm, file_jobs: int | None) -> Admission:
        handshake = Handshake(
            connection.headers, connection.query_params.multi_items(),
            connection.client.host if connection.client else None,
        )
        admission = self.gatekeeper.admit(
            handshake, form=form, live_sessions=len(self.sessions), draining=self.draining,
            engine_error=self.engine_error, file_jobs=file_jobs,
        )
        # The quota is checked last, once the key is known: a key at its quota is refused on every endpoint.
        wait = self.usage.retry_after(admission.owner)
        if wait is not None:
            self.gatekeeper.release(admission)
            key = admission.owner or ANONYMOUS
            raise Refusal(429, "quota_exceeded", f"{key} has used its monthly audio quota "
                          f"({self.usage.quota(key):g} s); it renews on the 1st (UTC)",
                          retry_after=wait, kind="quota")
        return admission

    def admit_file(self, request: HTTPConnection, form: CredentialForm = "bearer") -> Admission:
        """Admit one file upload: the same checks as a handshake, its cap the file-job cap; counts the job.

        `form` is the endpoint's credential form (`deepgram` for `POST /v1/listen`).
        """
        admission = self._admit(request, form, file_jobs=self.file_jobs)
        self.file_jobs += 1  # counted by the file-job cap and waited for by a drain until `release_file`
        return admission

    def release_file(self, admission: Admission) -> None:
        """The upload admitted with `admission` is answered (or abandoned): free its job and its key's slot."""
        self.file_jobs -= 1
        self.gatekeeper.release(admission)

    def meter_file(self, admission: Admission, endpoint: str, audio_s: float, outcome: str = "normal") -> None:
        """An upload's audio went through the engine: its usage record. A file admitted under the quota counts
        whole, so it may pass it; the next admission of the key is refused."""
        self.usage.record_file(admission.owner, endpoint, self.engine.name, self.engine.model_name, audio_s, outcome)

    def render_metrics(self) -> bytes:
        """This gateway's own metrics in the Prometheus text format (`voxrelay_ready` read now)."""
        self.metrics.ready.set(0 if self.not_ready_reasons() else 1)
        return self.metrics.render()

    def not_ready_reasons(self) -> list[str]:
        """Why `/readyz` fails (empty when ready): engine not loaded, draining, or at capacity."""
        reasons = []
        if not self.ready:
            reasons.append("engine_failed" if self.start_error else "engine_starting")
        if self.draining:
            reasons.append("draining")
        if len(self.sessions) >= self.settings.max_sessions:
            reasons.append("at_capacity")
        return reasons

    def stream_config(
        self, audio_format: m.AudioFormat, options: m.StreamOptions, *, word_timings: bool = False
    ) -> StreamConfig:
        """The engine-facing config for a session's audio format and options."""
        capabilities = self.engine.capabilities
        if capabilities.raw_audio:
            rate, channels = audio_format.sample_rate, audio_format.channels
        else:
            rate, channels = capabilities.sample_rate, 1
        return StreamConfig(
            encoding=audio_format.encoding if capabilities.raw_audio else "pcm_f32",
            sample_rate=rate,
            channels=channels,
            model=options.model,
            language=options.language,
            interim_results=options.interim_results,
            endpointing_ms=options.endpointing,
            utterance_end_ms=options.utterance_end_ms,
            vad_events=options.vad_events,
            punctuate=options.punctuate,
            smart_format=options.smart_format,
            keyterms=options.keyterms,
            word_timings=word_timings,
            dictation=options.dictation,
        )
