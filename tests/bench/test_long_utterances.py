"""The long-utterance bench: one clip through a real gateway, and the report it gives (every measure present)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from voxrelay.bench.common import find_corpus
from voxrelay.bench.long_utterances import LongResults, run_long
from voxrelay.bench.longset import build_long_set
from voxrelay.bench.report import write_report


def no_progress(label: str, total: int) -> Callable[[], None]:
    return lambda: None


def test_one_long_clip_through_a_real_gateway_gives_every_measure(tmp_path: Path) -> None:
    clips = build_long_set(find_corpus())
    shortest = min(clips, key=lambda c: c.speech_s)  # ~5 s of speech: the run stays near 20 s
    # No capacity level: `measure_capacity` is the corpus part's own code (the quick bench runs it); here it would
    # only add another real-time stream.
    results = run_long([shortest], levels=[], per_session=1, progress=no_progress)
    s = results.summary()
    row = results.clips[0]
    assert row["name"] == shortest.clip.name and row["speech_s"] == shortest.speech_s
    # The clip was stopped 50 ms after its last word: a final came, after the stop or (VAD) before it.
    assert s["final_after_stop_s"]["n"] + s["final_before_stop"] == 1
    assert row["stopped_after_stop_s"] is not None and row["stopped_after_stop_s"] > 0
    assert s["speech_final_after_speech_end_s"]["n"] == 1 and s["first_interim_after_onset_s"]["n"] == 1
    assert results.streaming_transcripts[0] and 0 <= s["streaming_wer"] < 0.5 and 0 <= s["whole_file_wer"] < 0.5
    assert s["capacity"] == [] and s["capacity_sessions"] == 0
    assert s["fit"] is None  # one length: no line
    report = write_report(tmp_path, {"mode": "quick", "command": "voxrelay bench --long", "long": results.to_dict()})
    assert "## Long utterances" in report.read_text()
    assert json.loads((tmp_path / "bench.json").read_text())["long"]["clips"][0]["name"] == shortest.clip.name


def test_the_report_shows_the_goals_the_fit_the_capacity_and_the_table(tmp_path: Path) -> None:
    results = LongResults(
        clips=[
            {"name": "a", "kind": "single", "sources": ["a.wav"], "speech_s": 5.0, "final_after_stop_s": 0.15,
             "stopped_after_stop_s": 0.11},
            {"name": "b", "kind": "joined", "sources": ["b.wav", "c.wav"], "speech_s": 15.0,
             "final_after_stop_s": 0.35, "stopped_after_stop_s": 0.36},
            {"name": "r", "kind": "report-only", "sources": ["r.wav"], "speech_s": 9.0, "final_after_stop_s": None,
             "stopped_after_stop_s": 0.02},
        ],
        speech_final_after_speech_end_s=[0.4, 0.5],
        first_interim_after_onset_s=[0.25, 0.35],
        streaming_wer=0.05,
        whole_file_wer=0.04,
        capacity=[{"sessions": 12, "final_after_stop_p50_s": 0.2, "final_after_stop_p95_s": 0.45,
                   "sessions_behind": 0, "finals": 24}],
        capacity_sessions=12,
    )
    text = write_report(tmp_path, {"mode": "full", "command": "voxrelay bench --long", "long": results.to_dict()})
    md = text.read_text()
    assert "3 clips (1 joined, 1 report-only, 1 single" in md
    assert "| final after stop | 250 | 340 | p50 ≤ 120, p95 ≤ 200 | **missed** |" in md
    assert "slope **20.0 ms/s** | intercept 50 ms | slope ≤ 5 ms/s | **missed** |" in md
    assert "| speech_final after end of speech (endpointing 300 ms) | 450 | 495 | p50 ≤ 450 | met |" in md
    assert "| first interim after speech onset | 300 | 345 | p50 ≤ 300 | met |" in md
    assert "gap 1.00 points" in md and "**12** sessions; goal ≥ 12 (met)" in md
    assert "| 9.0 | before stop | r | report-only |" in md
    svg = ET.fromstring((tmp_path / "long_latency.svg").read_text())
    assert "fit: 50 ms + 20.0 ms/s" in " ".join(svg.itertext())
    assert "![long_latency](long_latency.svg)" in md
