"""Latency against length: the least-squares line, the table and the SVG, from numbers alone."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from voxrelay.bench.length_plot import fit_line, latency_svg, latency_table


def test_the_fit_recovers_a_line_in_ms_per_second_of_speech() -> None:
    speech = [5.0, 8.0, 11.0, 17.0]
    latency = [0.1 + 0.02 * s for s in speech]  # 100 ms + 20 ms per second of speech
    fit = fit_line(speech, latency)
    assert fit is not None and fit.n == 4
    assert fit.slope_ms_per_s == pytest.approx(20.0) and fit.intercept_ms == pytest.approx(100.0)


def test_the_fit_is_least_squares_on_scattered_points() -> None:
    fit = fit_line([0.0, 1.0, 2.0], [0.0, 0.003, 0.0])  # ms: 0, 3, 0 -> flat at 1 ms
    assert fit is not None and fit.slope_ms_per_s == pytest.approx(0.0, abs=1e-9)
    assert fit.intercept_ms == pytest.approx(1.0)


def test_no_fit_without_two_lengths() -> None:
    assert fit_line([], []) is None
    assert fit_line([6.0], [0.2]) is None
    assert fit_line([6.0, 6.0], [0.2, 0.3]) is None


def test_the_table_is_sorted_by_length_and_names_a_final_before_the_stop() -> None:
    table = latency_table([("b", "joined", 12.0, 0.35), ("a", "single", 5.5, None), ("c", "report-only", 7.25, 0.1)])
    assert table[2:] == [
        "| 5.5 | before stop | a | single |",
        "| 7.2 | 100 | c | report-only |",
        "| 12.0 | 350 | b | joined |",
    ]


def test_the_svg_is_deterministic_and_shows_every_kind_and_the_fit() -> None:
    points = [(5.0, 0.2, "single"), (9.0, 0.25, "joined"), (15.0, 0.3, "joined")]
    fit = fit_line([p[0] for p in points], [p[1] for p in points])
    svg = latency_svg(points, fit, "Final after stop, long utterances", 200)
    assert svg == latency_svg(points, fit, "Final after stop, long utterances", 200)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    assert fit is not None
    for label in ("single (1)", "joined (2)", f"{fit.slope_ms_per_s:.1f} ms/s", "goal p95 200 ms", "long utterances"):
        assert label in text, label


def test_a_falling_line_is_labelled_with_a_minus_not_a_plus_minus() -> None:
    points = [(5.0, 0.5, "joined"), (15.0, 0.3, "joined")]
    svg = latency_svg(points, fit_line([5.0, 15.0], [0.5, 0.3]), "t")
    assert "fit: 600 ms - 20.0 ms/s" in " ".join(ET.fromstring(svg).itertext())
