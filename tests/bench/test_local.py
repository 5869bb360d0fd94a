"""The capacity benchmark's event-loop lag: read from a gateway's /metrics and printed per level."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.fakes import CountingEngine
from tests.support import ServerThread
from voxrelay.bench.local import LagHistogram, LocalResults, lag_columns
from voxrelay.bench.report import write_report
from voxrelay.ops.metrics import Metrics
from voxrelay.settings import Settings


def scrape(metrics: Metrics) -> LagHistogram:
    histogram = LagHistogram.parse(metrics.render().decode())
    assert histogram is not None
    return histogram


def test_the_lag_of_one_level_is_what_was_observed_between_two_scrapes() -> None:
    metrics = Metrics("local", lambda: 0, process=False)
    for _ in range(10):
        metrics.event_loop_lag.observe(0.040)  # an earlier level, not this one
    before = scrape(metrics)
    for _ in range(98):
        metrics.event_loop_lag.observe(0.0015)
    metrics.event_loop_lag.observe(0.3)
    metrics.event_loop_lag.observe(0.4)
    level = scrape(metrics).since(before)
    assert level.count == 100
    # p50: rank 50 of the 98 samples in (1 ms, 2 ms], interpolated as histogram_quantile does.
    assert level.quantile(0.5) == pytest.approx(0.001 + 0.001 * 50 / 98)
    # p99: rank 99 is the first sample in (200 ms, 500 ms], of two there.
    assert level.quantile(0.99) == pytest.approx(0.2 + 0.3 * 1 / 2)
    columns = lag_columns(before, scrape(metrics))
    assert columns["loop_lag_mean_ms"] == pytest.approx((98 * 1.5 + 300 + 400) / 100)
    assert columns["loop_lag_p50_ms"] == pytest.approx(1.0 + 50 / 98)
    assert columns["loop_lag_samples"] == 100


def test_a_lag_beyond_the_last_bucket_reads_as_the_last_bound() -> None:
    metrics = Metrics("local", lambda: 0, process=False)
    metrics.event_loop_lag.observe(9.0)
    assert scrape(metrics).quantile(0.99) == 5.0


def test_no_lag_columns_without_the_histogram_or_samples() -> None:
    assert LagHistogram.parse("# nothing here\nother_metric 1.0\n") is None
    assert lag_columns(None, None)["loop_lag_p99_ms"] is None
    empty = scrape(Metrics("local", lambda: 0, process=False))
    assert lag_columns(empty, empty)["loop_lag_p50_ms"] is None


def test_a_running_gateway_exports_the_lag_histogram() -> None:
    server = ServerThread(Settings(port=0), CountingEngine()).start()
    try:
        histogram = LagHistogram.parse(httpx.get(server.http("/metrics"), timeout=10).text)
    finally:
        server.stop()
    assert histogram is not None
    assert histogram.buckets[-1][0] == float("inf") and histogram.count >= 0


def test_the_report_prints_the_lag_and_the_interims_per_level(tmp_path: Path) -> None:
    results = LocalResults()
    results.capacity = [
        {"sessions": 4, "final_after_stop_p50_s": 0.2, "final_after_stop_p95_s": 0.3, "sessions_behind": 0,
         "finals": 12, "interims_per_audio_s": 1.234, "loop_lag_p50_ms": 0.61, "loop_lag_p99_ms": 4.2, "loop_lag_mean_ms": 0.8,
         "loop_lag_samples": 300},
        # A bench.json from before the probe and the interims' count existed has neither column.
        {"sessions": 16, "final_after_stop_p50_s": 0.3, "final_after_stop_p95_s": 0.6, "sessions_behind": 1,
         "finals": 48},
    ]
    results.capacity_sessions = 4
    report = write_report(tmp_path, {"mode": "full", "command": "voxrelay bench", "local": results.to_dict()})
    text = report.read_text()
    assert "interims / s of audio | event-loop lag p50 / p99 ms" in text
    assert "| 4 | 200 | 300 | 0 | 1.23 | 0.61 / 4.20 |" in text
    assert "| 16 | 300 | 600 | 1 | n/a | n/a / n/a |" in text
    assert json.loads((tmp_path / "bench.json").read_text())["local"]["capacity"][0]["loop_lag_p99_ms"] == 4.2
