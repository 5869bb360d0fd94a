"""Settings of engine `local`: environment variables `VOXRELAY_LOCAL_*`.

The names from before per-engine prefixes (`VOXRELAY_MODEL`, `VOXRELAY_FINAL_BEAM_SIZE`, ...)
still work; when both are set, the `VOXRELAY_LOCAL_` name wins. Importing this module loads
no model and needs none of the `whisper` extra, so options are checked before anything loads.
"""

from __future__ import annotations

import os
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voxrelay.engines.settings import EngineSettings

__all__ = ["LocalSettings", "usable_cores"]


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one), at most 16: the default decode workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 16))


class LocalSettings(EngineSettings):
    """Options of `LocalEngine`: faster-whisper, its decode scheduling and its windows."""

    model_config = SettingsConfigDict(env_prefix="VOXRELAY_LOCAL_")
    legacy_env: ClassVar[dict[str, str]] = {
        name: f"VOXRELAY_{name.upper()}"
        for name in (
            "model",
            "device",
            "compute_type",
            "cpu_threads",
            "decode_workers",
            "interim_interval",
            "final_beam_size",
            "final_context_s",
        )
    }

    # Whisper model name or path.
    model: str = Field(default="tiny.en", min_length=1)
    # CTranslate2 device: cpu, cuda, auto.
    device: str = Field(default="cpu", min_length=1)
    # CTranslate2 compute type, e.g. int8, float16.
    compute_type: str = Field(default="int8", min_length=1)
    # Threads of the encoder per decode; 0 = CTranslate2's default (4). 1 with one decode worker per core: on
    # 2 cores a decode alone took as long as with 2 or 4 encoder threads, and two at once gave ~60 % more decodes
    # a second (issue 16, "decode workers, one thread each" in docs/benchmarks.md; was 0).
    cpu_threads: int = Field(default=1, ge=0)
    # Threads of the token loop (generation, word alignment) per decode, on a second handle of the model (CPU
    # only; none while it equals cpu_threads, as by default); 0 = the encoder's handle and threads. One thread
    # decodes tokens ~2x faster than two on a 2-core AMD EPYC (tiny.en, same tokens: per-step thread syncs cost
    # more than they gain; docs/benchmarks.md).
    token_threads: int = Field(default=1, ge=0)
    # Threads of the file lane's own model (uploads; see engines/local/file_lane.py).
    file_cpu_threads: int = Field(default=1, ge=0)
    # Added to the file lane's threads' nice value (Linux; 0 = off): live decodes get the cores first.
    file_nice: int = Field(default=19, ge=0, le=19)
    # Decodes run at once (each with cpu_threads encoder threads and token_threads token threads); default one
    # per usable core (was 1): a stop's final no longer waits behind a running interim, and under load the
    # decodes of both workers fill the cores that one decode's single-threaded token loop leaves idle.
    decode_workers: int = Field(default_factory=usable_cores, ge=1, le=16)
    # Interims of different sessions decoded as one batch, at most (1 = each alone): a batch's token loop costs
    # little more than one decode's. With 4 on 2 cores, 9-56 % more interims under load, but the finals' p50 and
    # p95 got worse at most levels (they wait behind a batch, and the pacer spends the saving on more interims),
    # so off by default (issue 16, docs/benchmarks.md).
    interim_batch: int = Field(default=1, ge=1, le=16)
    # Seconds between interim decodes.
    interim_interval: float = Field(default=0.5, gt=0, le=10)
    # An utterance longer than this is cut (at its quietest point of the last 3 s), its part decoded as a final
    # while speech goes on, so a stop waits for at most this much audio (was 15 s; issue 16, docs/benchmarks.md).
    max_segment_s: float = Field(default=6.0, gt=0, le=30)
    # Beam for finals; interims are always greedy. 1 since finals are padded with silence (issue 16): beam 2 cost
    # ~25 % more decode per final and, on the long sets, more words (docs/benchmarks.md; was 2).
    final_beam_size: int = Field(default=1, ge=1, le=10)
    # Give Whisper the previous finals' text as a prompt.
    context_prompt: bool = False
    # Encoder window = audio + this much silence (None: Whisper's full 30 s); see WhisperDecoder.decode. Finals
    # had 8 s while the padding was log-mel zeros; as silent audio 6 s lost no word on the corpus (5 s did).
    final_window_pad_s: float | None = Field(default=6.0, ge=0, le=30)
    interim_window_pad_s: float | None = Field(default=2.0, ge=0, le=30)
    # Seconds of the previous final decoded in front of the next; 0 = off. More costs encoder
    # time and, on the corpus, 3, 5 and 8 s gave the same WER.
    final_context_s: float = Field(default=3.0, ge=0, le=10)
    # Commit agreed words of a long utterance while it goes on (issue 16, `engines/local/agreement.py`): when two
    # consecutive interims of a segment agree on a word prefix whose end lies `commit_margin_s` before the newest
    # audio, the segment is cut there (speech_final false) and the agreed interim words are its final ("text");
    # "off": only pauses and `max_segment_s` cut. Off by default: through the gateway it cost WER (corpus 3.9 ->
    # 6.5 %) and capacity for a lower stop p95 (docs/benchmarks.md; decoding the committed part again was removed).
    commit_agreed: Literal["off", "text"] = "off"
    # Decode an endpoint's final as soon as the pause has lasted its post-roll (200 ms), before the endpoint
    # (`engines/local/early_final.py`): the same audio, so the same text, up to endpointing - 200 ms sooner;
    # a pause that long inside speech costs one decode.
    early_final: bool = True
    # Segments shorter than this never commit (a stop decodes them quickly anyway).
    commit_min_pending_s: float = Field(default=3.0, gt=0, le=30)
    # How far before the newest decoded audio the committed words must end.
    commit_margin_s: float = Field(default=1.0, ge=0, le=10)
