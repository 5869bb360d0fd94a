"""The comparison table: both sides' measures, the difference, failures, and which clips are which (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from voxrelay.bench.compare import Row, compare_lines, corpus_rows, group_summary, long_rows, text_table


def pct(p50: float | None, p95: float | None, n: int = 3) -> dict[str, Any]:
    return {"p50": p50, "p95": p95, "n": n}


def corpus_summary(stop: float, *, wer: float, capacity: int, behind: int = 0) -> dict[str, Any]:
    return {
        "final_after_stop_s": pct(stop, stop * 2),
        "final_before_stop": 1,
        "speech_final_after_speech_end_s": pct(0.45, 0.6),
        "first_interim_after_onset_s": pct(0.4, None),
        "streaming_wer": wer,
        "whole_file_wer": 0.05,
        "capacity": [{"sessions": 8, "final_after_stop_p50_s": stop, "final_after_stop_p95_s": 0.4,
                      "sessions_behind": behind, "interims_per_audio_s": 1.5 - behind / 2}],
        "capacity_sessions": capacity,
    }


def part(this: dict[str, Any], other: dict[str, Any], failures: dict[str, dict[str, str]] | None = None,
         **extra: Any) -> dict[str, Any]:
    return {
        "labels": ["this tree", "abc1234"],
        "material": [{"clips": 3, "source": "from `tests/fixtures/audio`", "kind": "development"}],
        "failures": failures or {"this tree": {}, "abc1234": {}},
        "results": {"this tree": {"summary": this}, "abc1234": {"summary": other}},
        **extra,
    }


def by_name(rows: Sequence[Row]) -> dict[str, Row]:
    return {row.measure: row for row in rows}


def test_a_corpus_row_holds_both_sides_in_display_units_and_the_difference_this_minus_other() -> None:
    rows = by_name(corpus_rows(part(corpus_summary(0.1, wer=0.06, capacity=8),
                                    corpus_summary(0.25, wer=0.07, capacity=0, behind=2))))
    stop = rows["final after stop p50 / p95"]
    assert stop.this == pytest.approx((100, 200)) and stop.other == pytest.approx((250, 500))
    assert stop.cells() == ("100 / 200", "250 / 500", "-150 / -300")
    assert rows["first interim after speech onset p50 / p95"].cells() == ("400 / n/a", "400 / n/a", "+0 / n/a")
    assert rows["streaming WER"].cells() == ("6.00", "7.00", "-1.00")
    gap = rows["gap to whole-file WER (5.00 %)"]
    assert gap.this == pytest.approx((1.0,)) and gap.other == pytest.approx((2.0,))
    assert rows["8 sessions: sessions behind"].cells() == ("0", "2", "-2")
    interims = rows["8 sessions: interims per second of audio"]
    assert interims.better == "higher" and interims.cells() == ("1.50", "0.50", "+1.00")
    capacity = next(r for r in rows.values() if r.measure.startswith("capacity"))
    assert capacity.better == "higher" and capacity.cells() == ("8", "0", "+8") and "of 8" in capacity.measure


def test_a_measure_that_failed_on_one_side_reads_failed_with_no_difference() -> None:
    failed = part(corpus_summary(0.1, wer=0.06, capacity=8), corpus_summary(0.2, wer=0.07, capacity=8),
                  {"this tree": {}, "abc1234": {"endpointing": "ConnectionClosedError: 1008"}})
    rows = by_name(corpus_rows(failed))
    assert rows["streaming WER"].cells() == ("6.00", "failed", "n/a")
    assert rows["first interim after speech onset p50 / p95"].cells()[1:] == ("failed", "n/a / n/a")
    assert rows["final after stop p50 / p95"].cells()[2] == "-100 / -200"  # another measure: untouched
    lines = "\n".join(compare_lines({"labels": failed["labels"], "sides": [{"src": "/x/src"}, {"describe": "c"}],
                                     "corpus": failed}))
    assert "- abc1234: endpointing failed: ConnectionClosedError: 1008" in lines


def test_the_long_set_splits_development_and_report_only_clips() -> None:
    clips = [
        {"name": "a", "kind": "single", "final_after_stop_s": 0.2},
        {"name": "b", "kind": "joined", "final_after_stop_s": None},
        {"name": "c", "kind": "report-only", "final_after_stop_s": 0.4},
    ]
    seen: list[tuple[list[str], list[str]]] = []

    def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
        seen.append((list(refs), list(hyps)))
        return 0.1 * len(refs)

    groups = group_summary(clips, ["ra", "rb", "rc"], ["sa", "sb", "sc"], ["wa", "wb", "wc"], wer)
    assert groups["development"]["clips"] == 2 and groups["development"]["final_after_stop_s"]["n"] == 1
    assert groups["report-only"]["final_after_stop_s"]["p50"] == 0.4
    assert groups["development"]["streaming_wer"] == pytest.approx(0.2)
    assert (["ra", "rb"], ["sa", "sb"]) in seen and (["rc"], ["wc"]) in seen
    # A side whose endpointing pass failed after one clip: only that clip's transcript is scored.
    short = group_summary(clips, ["ra"], ["sa"], ["wa", "wb", "wc"], wer)
    assert short["development"]["streaming_wer"] == pytest.approx(0.1) and short["report-only"]["streaming_wer"] is None

    summary = {
        **corpus_summary(0.3, wer=0.06, capacity=0),
        "fit": {"slope_ms_per_s": -3.25, "intercept_ms": 400, "n": 2},
    }
    long = part(summary, {**summary, "fit": None}, groups={"this tree": groups, "abc1234": groups})
    rows = by_name(long_rows(long))
    assert rows["... development (2 clips)"].cells() == ("200 / 200", "200 / 200", "+0 / +0")
    assert rows["... report-only (1 clips)"].this == pytest.approx((400, 400))
    assert rows["final after stop against seconds of speech: slope"].cells() == ("-3.2", "n/a", "n/a")
    assert "streaming WER, development" in rows and "streaming WER, report-only" in rows


def test_the_text_table_aligns_every_column_and_the_report_says_which_clips_are_which() -> None:
    rows = corpus_rows(part(corpus_summary(0.1, wer=0.06, capacity=8), corpus_summary(0.25, wer=0.07, capacity=8)))
    lines = text_table(rows, "this tree", "abc1234")
    assert len({len(line) for line in lines}) == 1  # every line as wide as the header
    assert lines[0].split() == ["measure", "this", "tree", "abc1234", "difference"]
    compare = {
        "labels": ["this tree", "abc1234"],
        "sides": [{"src": "/w/src"}, {"describe": "commit `abc1234`"}],
        "corpus": {**part(corpus_summary(0.1, wer=0.06, capacity=8), corpus_summary(0.2, wer=0.07, capacity=8)),
                   "material": [{"clips": 1, "source": "from `/elsewhere`", "kind": "report-only"}]},
    }
    md = compare_lines(compare)
    assert "| measure | this tree | abc1234 | difference (this tree - abc1234) |" in md
    assert "Clips: **report-only**: 1 clip from `/elsewhere`." in md
    assert "| final after stop p50 / p95, ms (lower is better) | 100 / 200 | 200 / 400 | -100 / -200 |" in md
    assert any(line.startswith("measure ") for line in compare_lines(compare, table="text"))
