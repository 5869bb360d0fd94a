"""`voxrelay bench --compare-ref`: the side-by-side table of this tree and another commit, measured in one run.

Sans-I/O: everything here takes the `compare` part of bench.json (each side's `LocalResults` / `LongResults` as
dicts, plus what failed) and returns rows and text; `bench.interleaved` measures, `bench.report` writes.

A row holds one measure for both sides in display units (ms, %, points, sessions), one value or a pair such as
p50 / p95, and the difference *this tree - the other*; `better` says which direction is an improvement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Row", "compare_lines", "corpus_rows", "group_summary", "long_rows", "markdown_table", "text_table"]

Values = tuple[float | None, ...]
_DIGITS = {"ms": 0, "ms/s": 1, "%": 2, "points": 2, "sessions": 0, "clips": 0, "/s": 2}


@dataclass(frozen=True)
class Row:
    """One measure, both sides. `failed` names a side whose run of this measure raised (its values are n/a)."""

    measure: str
    unit: str
    this: Values
    other: Values
    better: str = "lower"  # or "higher", or "" (a count to read, not to win)
    failed: tuple[bool, bool] = (False, False)

    @property
    def diff(self) -> Values:
        if any(self.failed):
            return tuple(None for _ in self.this)
        return tuple(None if a is None or b is None else a - b for a, b in zip(self.this, self.other, strict=True))

    def cells(self) -> tuple[str, str, str]:
        """The three value cells: this tree, the other side, the difference (signed)."""
        this = "failed" if self.failed[0] else _join(self.this, self.unit)
        other = "failed" if self.failed[1] else _join(self.other, self.unit)
        return this, other, _join(self.diff, self.unit, signed=True)


def _number(value: float | None, unit: str, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{_DIGITS[unit]}f}" if signed else f"{value:.{_DIGITS[unit]}f}"


def _join(values: Values, unit: str, signed: bool = False) -> str:
    return " / ".join(_number(v, unit, signed) for v in values)


def _ms(pct: Mapping[str, Any] | None, *keys: str) -> Values:
    if not pct:
        return tuple(None for _ in keys)
    return tuple(None if pct.get(k) is None else pct[k] * 1000 for k in keys)


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100


def _gap(summary: Mapping[str, Any]) -> float | None:
    streaming, whole = summary.get("streaming_wer"), summary.get("whole_file_wer")
    return None if streaming is None or whole is None else 100 * (streaming - whole)


def _capacity_rows(this: Mapping[str, Any], other: Mapping[str, Any], fails: tuple[bool, bool]) -> list[Row]:
    """Per level: final after stop p50 / p95, sessions behind and interims' rate; then the most sessions that passed."""
    by_level = [{r["sessions"]: r for r in s.get("capacity") or []} for s in (this, other)]
    rows = []
    for level in sorted(set(by_level[0]) | set(by_level[1])):
        a, b = by_level[0].get(level, {}), by_level[1].get(level, {})
        rows += [
            Row(f"{level} sessions: final after stop p50 / p95", "ms",
                _level_ms(a), _level_ms(b), failed=fails),
            Row(f"{level} sessions: sessions behind", "sessions",
                (a.get("sessions_behind"),), (b.get("sessions_behind"),), failed=fails),
            Row(f"{level} sessions: interims per second of audio", "/s",
                (a.get("interims_per_audio_s"),), (b.get("interims_per_audio_s"),), "higher", fails),
        ]
    if rows:
        levels = ", ".join(str(level) for level in sorted(set(by_level[0]) | set(by_level[1])))
        rows.append(Row(f"capacity (p95 ≤ 500 ms, none behind; of {levels}; 0 = none passed)", "sessions",
                        (this.get("capacity_sessions"),), (other.get("capacity_sessions"),), "higher", fails))
    return rows


def _level_ms(row: Mapping[str, Any]) -> Values:
    return tuple(None if row.get(k) is None else row[k] * 1000
                 for k in ("final_after_stop_p50_s", "final_after_stop_p95_s"))


def _fails(part: Mapping[str, Any], measure: str) -> tuple[bool, bool]:
    failures = part.get("failures") or {}
    this, other = part["labels"]
    return measure in failures.get(this, {}), measure in failures.get(other, {})


def _summaries(part: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    this, other = part["labels"]
    return part["results"][this]["summary"], part["results"][other]["summary"]


def _timing_rows(
    a: Mapping[str, Any], b: Mapping[str, Any], stop: tuple[bool, bool], ep: tuple[bool, bool]
) -> list[Row]:
    """What both clip sets report after the stop latency: untimed stops, speech_final, first interim."""
    return [
        Row("clips whose last final came before the stop (not timed)", "clips",
            (a.get("final_before_stop"),), (b.get("final_before_stop"),), "", stop),
        Row("speech_final after end of speech p50 / p95", "ms", _ms(a["speech_final_after_speech_end_s"], "p50", "p95"),
            _ms(b["speech_final_after_speech_end_s"], "p50", "p95"), failed=ep),
        Row("first interim after speech onset p50 / p95", "ms", _ms(a["first_interim_after_onset_s"], "p50", "p95"),
            _ms(b["first_interim_after_onset_s"], "p50", "p95"), failed=ep),
    ]


def corpus_rows(part: Mapping[str, Any]) -> list[Row]:
    """The corpus measures (`bench.local`'s), this tree against the other side."""
    a, b = _summaries(part)
    stop, ep, cap = _fails(part, "final after stop"), _fails(part, "endpointing"), _fails(part, "capacity")
    whole = _percent(a.get("whole_file_wer"))
    return [
        Row("final after stop p50 / p95", "ms", _ms(a["final_after_stop_s"], "p50", "p95"),
            _ms(b["final_after_stop_s"], "p50", "p95"), failed=stop),
        *_timing_rows(a, b, stop, ep),
        Row("streaming WER", "%", (_percent(a.get("streaming_wer")),), (_percent(b.get("streaming_wer")),),
            failed=ep),
        Row(f"gap to whole-file WER ({_number(whole, '%')} %)", "points", (_gap(a),), (_gap(b),), failed=ep),
        *_capacity_rows(a, b, cap),
    ]


def group_summary(
    clips: Sequence[Mapping[str, Any]],
    references: Sequence[str],
    streaming: Sequence[str],
    whole_file: Sequence[str],
    wer: Callable[[Sequence[str], Sequence[str]], float],
) -> dict[str, dict[str, Any]]:
    """The long set split into *development* (single, joined) and *report-only* clips: final after stop p50 / p95
    and the two WERs of each group. `references`/`streaming` are in clip order (possibly shorter: a failed run)."""
    import numpy as np

    groups: dict[str, dict[str, Any]] = {}
    for group in ("development", "report-only"):
        mine = [i for i, c in enumerate(clips) if (c["kind"] == "report-only") == (group == "report-only")]
        if not mine:
            continue
        timed = [clips[i]["final_after_stop_s"] for i in mine if clips[i]["final_after_stop_s"] is not None]
        streamed = [i for i in mine if i < len(streaming)]
        groups[group] = {
            "clips": len(mine),
            "final_after_stop_s": {"p50": float(np.percentile(timed, 50)) if timed else None,
                                   "p95": float(np.percentile(timed, 95)) if timed else None, "n": len(timed)},
            "streaming_wer": wer([references[i] for i in streamed], [streaming[i] for i in streamed])
            if streamed else None,
            "whole_file_wer": wer([references[i] for i in streamed], [whole_file[i] for i in streamed])
            if streamed and len(whole_file) >= len(clips) else None,
        }
    return groups


def long_rows(part: Mapping[str, Any]) -> list[Row]:
    """The long-utterance measures (`bench.long_utterances`'), development and report-only clips apart."""
    a, b = _summaries(part)
    this, other = part["labels"]
    ga, gb = part["groups"].get(this, {}), part["groups"].get(other, {})
    stop, ep, cap = _fails(part, "final after stop"), _fails(part, "endpointing"), _fails(part, "capacity")
    rows = [Row("final after stop p50 / p95, all clips", "ms", _ms(a["final_after_stop_s"], "p50", "p95"),
                _ms(b["final_after_stop_s"], "p50", "p95"), failed=stop)]
    for group in ("development", "report-only"):
        if group in ga or group in gb:
            n = (ga.get(group) or gb.get(group) or {}).get("clips", 0)
            rows.append(Row(f"... {group} ({n} clips)", "ms", _ms((ga.get(group) or {}).get("final_after_stop_s"),
                            "p50", "p95"), _ms((gb.get(group) or {}).get("final_after_stop_s"), "p50", "p95"),
                            failed=stop))
    fit_a, fit_b = a.get("fit") or {}, b.get("fit") or {}
    rows += [
        Row("final after stop against seconds of speech: slope", "ms/s", (fit_a.get("slope_ms_per_s"),),
            (fit_b.get("slope_ms_per_s"),), failed=stop),
        *_timing_rows(a, b, stop, ep),
    ]
    for group in ("development", "report-only"):
        if group not in ga and group not in gb:
            continue
        wa, wb = ga.get(group) or {}, gb.get(group) or {}
        whole = _percent(wa.get("whole_file_wer", wb.get("whole_file_wer")))
        rows += [
            Row(f"streaming WER, {group}", "%", (_percent(wa.get("streaming_wer")),),
                (_percent(wb.get("streaming_wer")),), failed=ep),
            Row(f"... gap to whole-file WER ({_number(whole, '%')} %)", "points", (_gap(wa),), (_gap(wb),), failed=ep),
        ]
    return [*rows, *_capacity_rows(a, b, cap)]


def markdown_table(rows: Sequence[Row], this: str, other: str) -> list[str]:
    lines = [f"| measure | {this} | {other} | difference ({this} - {other}) |", "|---|---|---|---|"]
    for row in rows:
        a, b, d = row.cells()
        lines.append(f"| {_name(row)} | {a} | {b} | {d} |")
    return lines


def text_table(rows: Sequence[Row], this: str, other: str) -> list[str]:
    """The same table in aligned plain text, for a terminal."""
    table = [("measure", this, other, "difference")]
    table += [(_name(r), *r.cells()) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]

    def aligned(line: tuple[str, ...]) -> str:
        values = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))
        return "  ".join([line[0].ljust(widths[0]), *values])

    out = [aligned(line) for line in table]
    return [out[0], "-" * len(out[0]), *out[1:]]


def _name(row: Row) -> str:
    """The measure with its unit and, when one way is better, which: `final after stop p50 / p95, ms (lower)`."""
    return f"{row.measure}, {row.unit}" + {"lower": " (lower is better)", "higher": " (higher is better)"}.get(
        row.better, "")


def _material(part: Mapping[str, Any]) -> str:
    return "; ".join(f"**{m['kind']}**: {m['clips']} clip{'s' * (m['clips'] != 1)} {m['source']}"
                     for m in part["material"])


def compare_lines(compare: Mapping[str, Any], table: str = "markdown") -> list[str]:
    """The report's comparison section: what ran where, which clips are which, and one table per clip set."""
    this, other = compare["labels"]
    make = markdown_table if table == "markdown" else text_table
    lines = [
        f"## This tree against {other}, measured alternately in one run",
        "",
        f"*{this}*: `{compare['sides'][0]['src']}`; *{other}*: {compare['sides'][1]['describe']}. Both gateways ran "
        "at once with the same Python environment and flags (`--engine local`); each clip (each capacity level) "
        "was streamed to one, then the other, the order swapped every clip (ABBA), so load on the machine falls "
        "on both. Whole-file WER is faster-whisper's in the bench process, the same for both sides.",
        "",
    ]
    for key, title, rows_of in (("corpus", "Corpus", corpus_rows), ("long", "Long utterances", long_rows)):
        part = compare.get(key)
        if not part:
            continue
        lines += [f"### {title}", "", f"Clips: {_material(part)}.", "", *make(rows_of(part), this, other), ""]
        for label, failed in (part.get("failures") or {}).items():
            lines += [f"- {label}: {measure} failed: {error}" for measure, error in failed.items()]
        if part.get("failures") and any(part["failures"].values()):
            lines.append("")
    return lines
