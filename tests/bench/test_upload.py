"""The upload part of `voxrelay bench`: live sessions alone and during an upload, against a real gateway."""

from __future__ import annotations

from pathlib import Path

from voxrelay.bench.common import RATE, find_corpus, load_clips
from voxrelay.bench.report import write_report
from voxrelay.bench.upload import long_recording, run_upload


def test_the_long_recording_is_corpus_clips_back_to_back() -> None:
    clips = load_clips(find_corpus(), limit=3)
    audio, references = long_recording(clips, 40.0)
    assert len(audio) >= 40 * RATE and len(references) >= 3
    assert references[:3] == [c.reference for c in clips] and references[3] == clips[0].reference


def test_a_short_run_measures_both_passes_and_reports_them(tmp_path: Path) -> None:
    clips = load_clips(find_corpus(), limit=4)
    results = run_upload(clips, sessions=1, rounds=2, upload_s=45.0, progress=lambda label, total: lambda: None)
    s = results.summary()
    assert s["upload_status"] == 200 and s["upload_audio_s"] >= 45
    assert s["upload_wall_s"] > 0 and s["upload_wer"] is not None and s["upload_wer"] < 0.3
    assert s["alone"]["n"] + s["with_upload"]["n"] >= 1  # stops right after the last word usually leave words pending
    report = write_report(tmp_path, {"mode": "quick", "command": "test", "upload": results.to_dict()})
    text = report.read_text()
    assert "with the upload" in text and "real-time factor" in text
