"""Engine `local`: faster-whisper on this machine, no key and no network.

The engine owns what every stream shares: the Whisper model behind one `InferenceScheduler`
(finals before interims), the Silero VAD on one `VadWorker` thread, and the file lane for
uploads. Each session is a `LocalStream` (`local.stream`), which says how a stream works.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Literal

import numpy as np

from voxrelay.engines.base import (
    Capabilities,
    Engine,
    EngineFailure,
    StreamConfig,
)
from voxrelay.engines.files import FileRequest, FileTranscript
from voxrelay.engines.local.file_lane import FileLane, whisper_model
from voxrelay.engines.local.files import transcribe_file
from voxrelay.engines.local.prompting import language_error
from voxrelay.engines.local.scheduler import FINAL, InferenceScheduler, JobTiming
from voxrelay.engines.local.settings import LocalSettings
from voxrelay.engines.local.stream import LocalStream
from voxrelay.engines.local.vad import SileroVad
from voxrelay.engines.local.vad_worker import VadWorker
from voxrelay.engines.local.whisper import WhisperDecoder

__all__ = ["LocalEngine", "LocalStream"]

log = logging.getLogger(__name__)


class LocalEngine(Engine):
    """faster-whisper with one shared model and one inference scheduler."""

    name = "local"
    # The VAD needs 200 ms of quiet to call a pause, so shorter endpointing is raised to it.
    capabilities = Capabilities(raw_audio=False, sample_rate=16000, min_endpointing_ms=200, file_transcription=True)
    vad_worker: VadWorker | None = None  # runs between start() and stop()

    def __init__(self, settings: LocalSettings | None = None) -> None:
        """Keep the options; nothing loads until `start()`. None = `LocalSettings()` (the environment)."""
        settings = settings if settings is not None else LocalSettings()
        super().__init__(settings.model)
        self.settings = settings
        self._device = settings.device
        self._compute_type = settings.compute_type
        self.decode_workers = settings.decode_workers
        self.interim_interval = settings.interim_interval
        self.max_segment_s = settings.max_segment_s
        self.final_beam_size = settings.final_beam_size
        self.context_prompt = settings.context_prompt
        # Encoder window = audio + this padding (None: Whisper's full 30 s); see WhisperDecoder.decode.
        self.final_window_pad_s = settings.final_window_pad_s
        self.interim_window_pad_s = settings.interim_window_pad_s
        # Seconds of the previous final decoded in front of the next one (0: none).
        self.final_context_s = settings.final_context_s
        self.decoder: WhisperDecoder | None = None
        self.vad: SileroVad | None = None
        self.scheduler: InferenceScheduler | None = None
        self.file_lane: FileLane | None = None  # uploads; its model loads on the first one

    async def start(self) -> None:
        try:
            decoder, vad = await asyncio.to_thread(self._load)
        except Exception as exc:
            raise EngineFailure(f"could not load the local model {self.model_name!r}: {exc}") from exc
        self.decoder = decoder
        self.scheduler = InferenceScheduler(
            workers=self.decode_workers,
            on_timing=self._report_timing,
            batch_runner=decoder.decode_batch,
            max_batch=self.settings.interim_batch,
        )
        # Uploads get their own thread and copy of the model (local.file_lane), so live jobs never wait for them.
        load = functools.partial(
            whisper_model, self.model_name, self._device, self._compute_type, self.settings.file_cpu_threads
        )
        self.file_lane = FileLane(load, nice=self.settings.file_nice, on_timing=self._report_file_timing)
        self.vad, self.vad_worker = vad, VadWorker(vad)
        self.started = True

    def _report_timing(self, priority: int, timing: JobTiming) -> None:
        kind: Literal["final", "interim"] = "final" if priority == FINAL else "interim"
        self.observer.job_timing(kind, timing.wait, timing.run)

    def _report_file_timing(self, timing: JobTiming) -> None:
        self.observer.job_timing("file", timing.wait, timing.run)

    def _load(self) -> tuple[WhisperDecoder, SileroVad]:
        decoder = WhisperDecoder.from_settings(self.settings)
        # Warm up: the first call allocates CTranslate2's buffers.
        decoder.decode(np.zeros(16000, dtype=np.float32))
        return decoder, SileroVad()

    async def open(self, config: StreamConfig) -> LocalStream:
        if not self.started:
            raise EngineFailure("the local engine is still loading its model")
        assert self.decoder is not None
        refused = language_error(self.model_name, self.decoder.multilingual, config.language)
        if refused:  # at configure time: an English transcript of French speech would be worse than none
            raise EngineFailure(refused, code="bad_request")
        if config.model and config.model not in (self.model_name, "default"):
            log.info("stream asked for model %r; serving %r", config.model, self.model_name)
        return LocalStream(self, config)

    async def transcribe_file(self, request: FileRequest) -> FileTranscript:
        """Decode a whole recording as faster-whisper's `transcribe` does, on the file lane (`local.files`)."""
        if not self.started or self.file_lane is None:
            raise EngineFailure("the local engine is still loading its model")
        return await transcribe_file(self.file_lane, request, self.capabilities.sample_rate)

    async def stop(self) -> None:
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.close)
        if self.file_lane is not None:
            await asyncio.to_thread(self.file_lane.close)
        if self.vad_worker is not None:
            await asyncio.to_thread(self.vad_worker.close)
        self.started = False
