"""Latency against utterance length (issue 16): the least-squares line, a text table and an SVG plot.

Sans-I/O: everything takes points and returns numbers or text; the report writes the text to files.
A point is (seconds of speech, seconds from stop to final, kind of clip).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LineFit", "fit_line", "latency_table", "latency_svg"]

Point = tuple[float, float, str]


@dataclass(frozen=True)
class LineFit:
    """latency = intercept + slope * speech, both in ms (slope: ms per second of speech)."""

    slope_ms_per_s: float
    intercept_ms: float
    n: int


def fit_line(speech_s: Sequence[float], latency_s: Sequence[float]) -> LineFit | None:
    """Ordinary least squares of latency (ms) on speech length (s); None without two distinct lengths."""
    x = np.asarray(speech_s, dtype=float)
    y = np.asarray(latency_s, dtype=float) * 1000
    if len(x) < 2 or np.ptp(x) == 0:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    return LineFit(float(slope), float(intercept), len(x))


def latency_table(rows: Sequence[tuple[str, str, float, float | None]]) -> list[str]:
    """Markdown rows (clip, kind, speech s, final after stop ms), shortest utterance first."""
    lines = ["| speech s | final after stop ms | clip | kind |", "|---|---|---|---|"]
    for name, kind, speech, latency in sorted(rows, key=lambda r: (r[2], r[0])):
        shown = "before stop" if latency is None else f"{latency * 1000:.0f}"
        lines.append(f"| {speech:.1f} | {shown} | {name} | {kind} |")
    return lines


def latency_svg(points: Sequence[Point], fit: LineFit | None, title: str, goal_ms: float | None = None) -> str:
    """The plot as SVG text: one marker per clip (a colour per kind), the fitted line, the goal as a dashed line.

    Deterministic for the same points (no date, fixed ids), text kept as text (searchable, small).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "voxrelay"}):
        fig, ax = plt.subplots(figsize=(8.5, 4))
        for kind in sorted({k for _, _, k in points}):
            mine = [(s, lat * 1000) for s, lat, k in points if k == kind]
            ax.plot([s for s, _ in mine], [ms for _, ms in mine], "o", label=f"{kind} ({len(mine)})")
        if fit is not None:
            xs = np.array([min(s for s, _, _ in points), max(s for s, _, _ in points)])
            sign = "+" if fit.slope_ms_per_s >= 0 else "-"
            ax.plot(xs, fit.intercept_ms + fit.slope_ms_per_s * xs, "-", color="black",
                    label=f"fit: {fit.intercept_ms:.0f} ms {sign} {abs(fit.slope_ms_per_s):.1f} ms/s")
        if goal_ms is not None:
            ax.axhline(goal_ms, color="grey", linestyle="--", label=f"goal p95 {goal_ms:.0f} ms")
        ax.set_xlabel("speech in the utterance, s")
        ax.set_ylabel("final after stop, ms")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over a point
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
        plt.close(fig)
    return out.getvalue()
