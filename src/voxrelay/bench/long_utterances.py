"""Long utterances (issue 16) through a real gateway: stop latency against length, and the corpus' other measures.

`voxrelay bench --long` streams the long-utterance set (`bench.longset`) to a `voxrelay serve --engine local`
subprocess exactly as the corpus part does (`bench.local`: 50 ms linear16 frames at real-time pace, endpointing
300 ms), so the numbers compare with the corpus' directly:

- *final after stop*, per clip: the clip cut 50 ms after its last loud frame, `stop` right after the last frame,
  the time to the last `final_transcript` (a clip whose last final came before the stop is counted apart); the
  least-squares line of it against the clip's seconds of speech (slope in ms per second);
- *speech_final after end of speech*, *first interim after onset* and the streaming WER (against the references,
  and faster-whisper's whole-file WER on the same clips): the cut clip and 1.5 s of silence, as `bench.local`;
- *capacity on long speech*: N concurrent sessions, each streaming long clips with a stop after each; the same
  pass rule as the corpus' (p95 final after stop <= 500 ms, no session behind).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from voxrelay.bench.common import Gateway, percentile
from voxrelay.bench.length_plot import fit_line
from voxrelay.bench.local import (
    LocalResults,
    _final_after_stop,
    _stream,
    capacity_sessions,
    measure_capacity,
    measure_endpointing,
    whole_file_transcripts,
)
from voxrelay.bench.longset import LongClip

__all__ = ["LongResults", "measure_stop_latency", "run_long"]


def _pct(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "n": len(values)}


@dataclass
class LongResults:
    clips: list[dict[str, Any]] = field(default_factory=list)  # one row per clip: name, kind, speech_s, latencies
    endpointing_ms: int = 300
    speech_final_after_speech_end_s: list[float] = field(default_factory=list)
    first_interim_after_onset_s: list[float] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    streaming_transcripts: list[str] = field(default_factory=list)
    whole_file_transcripts: list[str] = field(default_factory=list)
    streaming_wer: float | None = None
    whole_file_wer: float | None = None
    capacity: list[dict[str, Any]] = field(default_factory=list)
    capacity_sessions: int | None = None

    def summary(self) -> dict[str, Any]:
        timed = [c for c in self.clips if c["final_after_stop_s"] is not None]
        fit = fit_line([c["speech_s"] for c in timed], [c["final_after_stop_s"] for c in timed])
        kinds = sorted({c["kind"] for c in self.clips})
        return {
            "clips": len(self.clips),
            "speech_s": _pct([c["speech_s"] for c in self.clips]),
            "final_after_stop_s": _pct([c["final_after_stop_s"] for c in timed]),
            "final_before_stop": len(self.clips) - len(timed),
            "final_after_stop_by_kind": {
                k: _pct([c["final_after_stop_s"] for c in timed if c["kind"] == k]) for k in kinds
            },
            "fit": None if fit is None else asdict(fit),
            "speech_final_after_speech_end_s": _pct(self.speech_final_after_speech_end_s),
            "first_interim_after_onset_s": _pct(self.first_interim_after_onset_s),
            "streaming_wer": self.streaming_wer,
            "whole_file_wer": self.whole_file_wer,
            "endpointing_ms": self.endpointing_ms,
            "capacity": self.capacity,
            "capacity_sessions": self.capacity_sessions,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


async def measure_stop_latency(
    url: str, clips: Sequence[LongClip], results: LongResults, tick: Callable[[], None]
) -> None:
    """Each clip cut 50 ms after its last word and stopped right after: one row per clip."""
    for long in clips:
        result = await _stream(url, long.clip.trimmed(), results.endpointing_ms)
        final, stopped = _final_after_stop(result)
        results.clips.append(
            {
                "name": long.clip.name,
                "kind": long.kind,
                "sources": list(long.sources),
                "speech_s": long.speech_s,
                "final_after_stop_s": final,
                "stopped_after_stop_s": stopped,
            }
        )
        tick()


def run_long(
    clips: Sequence[LongClip],
    *,
    levels: Sequence[int],
    per_session: int,
    progress: Callable[[str, int], Callable[[], None]],
    gateway_args: Sequence[str] = (),
) -> LongResults:
    """Every measure on `clips` through one gateway; capacity at each of `levels` (none if empty)."""
    from voxrelay.bench.wer import wer

    results = LongResults()
    plain = [c.clip for c in clips]
    with Gateway("--engine", "local", "--max-sessions", str(max([*levels, 1]) + 2), *gateway_args) as gateway:
        url = gateway.url()
        asyncio.run(measure_stop_latency(url, clips, results, progress("long: final after stop", len(clips))))
        # The corpus part's endpointing pass, on these clips: speech_final, first interim, transcripts.
        streamed = LocalResults(endpointing_ms=results.endpointing_ms)
        asyncio.run(measure_endpointing(url, plain, streamed, progress("long: endpointing + interims", len(clips))))
        results.speech_final_after_speech_end_s = streamed.speech_final_after_speech_end_s
        results.first_interim_after_onset_s = streamed.first_interim_after_onset_s
        results.references = streamed.references
        results.streaming_transcripts = streamed.streaming_transcripts
        if levels:
            results.capacity = asyncio.run(
                measure_capacity(
                    url, plain, levels, per_session, progress("long: capacity", len(levels)),
                    metrics_url=f"http://127.0.0.1:{gateway.port}/metrics",
                )
            )
    results.whole_file_transcripts = whole_file_transcripts(plain)
    results.streaming_wer = wer(results.references, results.streaming_transcripts)
    results.whole_file_wer = wer(results.references, results.whole_file_transcripts)
    results.capacity_sessions = capacity_sessions(results.capacity)
    return results
