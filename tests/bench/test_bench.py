"""A smoke run of `voxrelay bench`: every measurement runs (briefly) so the benchmarks never rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_quick_writes_a_complete_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voxrelay.cli", "bench", "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    summary = data["local"]["summary"]
    # Every local measurement produced numbers from real streams.
    timed = summary["final_after_stop_s"]
    # Every clip was measured: its last final came after the stop (timed) or already before it.
    assert timed["n"] + summary["final_before_stop"] == 2
    assert timed["n"] == 0 or 0 < timed["p50"] <= timed["p95"] < 30, timed  # a final takes time, and not forever
    assert summary["speech_final_after_speech_end_s"]["n"] >= 1
    assert summary["first_interim_after_onset_s"]["n"] >= 1
    assert summary["first_delta_after_onset_s"]["n"] >= 1  # /v1/realtime, next to it
    assert 0 <= summary["realtime_wer"] < 0.5
    assert 0 <= summary["streaming_wer"] < 0.5 and 0 <= summary["whole_file_wer"] < 0.5
    assert summary["capacity"] and summary["capacity"][0]["finals"] >= 1
    assert summary["capacity"][0]["interims_per_audio_s"] > 0  # interims came under that load too
    # The proxy path relayed stamped transcripts at every level.
    for row in data["proxy"]["levels"]:
        assert row["messages_direct"] > 0 and row["messages_relayed"] > 0
        assert row["failed_direct"] == 0 and row["failed_relayed"] == 0
        # The whole run always has numbers; the steady-state window of a 3 s smoke run may be empty.
        assert row["all_relayed_p50_ms"] is not None and row["ready_relayed_p50_ms"] is not None
        # Memory is clamped at 0 by the bench; a proxied session holding a MiB would be a leak or a bug.
        assert row["memory_per_session_kb"] < 1024 and row["gateway_cpu_per_stream_pct"] > 0, row
    # The upload part: live sessions alone and during an upload that was transcribed.
    upload = data["upload"]["summary"]
    assert upload["upload_status"] == 200 and upload["upload_wer"] < 0.3 and upload["upload_rtf"] > 0
    report = (tmp_path / "bench.md").read_text()
    assert "final after stop" in report and "Proxy path" in report and "first delta after speech onset" in report
    for plot in ("local_latency.png", "local_capacity.png", "proxy_latency.png"):
        assert (tmp_path / plot).stat().st_size > 1000
