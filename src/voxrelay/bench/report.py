"""Benchmark output: JSON (everything), Markdown (the report), PNG plots and the long set's SVG (matplotlib)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

__all__ = ["write_report"]

GOALS = {
    "final_after_stop_p50_s": 0.250,
    "final_after_stop_p95_s": 0.500,
    "first_interim_p50_s": 0.500,
    "wer_gap_points": 1.0,
    "capacity_sessions": 8,
    "added_p50_ms_1000": 1.0,
    "added_p99_ms_1000": 10.0,
    "memory_per_session_kb": 200.0,
}


def _delta_row(s: dict[str, Any], fi: dict[str, Any]) -> list[str]:
    """/v1/realtime's first delta next to /stt-stream's first interim (same clips, pacing and endpointing)."""
    fd = s.get("first_delta_after_onset_s")
    if not fd or not fd["n"]:
        return []
    near = None if fd["p50"] is None or fi["p50"] is None else fd["p50"] <= fi["p50"] + 0.1
    return [
        f"| first delta after speech onset, /v1/realtime (WER {_fmt(s.get('realtime_wer'), 100, 1, ' %')}) | "
        f"{_fmt(fd['p50'], 1000)} | {_fmt(fd['p95'], 1000)} | p50 within 100 of first interim | {_verdict(near)} |"
    ]


def _fmt(value: Any, scale: float = 1.0, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value * scale:.{digits}f}{unit}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def machine() -> dict[str, Any]:
    import os

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_report(out: Path, data: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    data = {**data, "machine": machine()}
    (out / "bench.json").write_text(json.dumps(data, indent=2))
    plots = _plots(out, data) + _long_plot(out, data)
    lines = [f"# voxrelay benchmark ({data['mode']} run)", ""]
    m = data["machine"]
    lines += [f"Machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}. Command: `{data['command']}`.", ""]
    local = data.get("local")
    if local:
        s = local["summary"]
        gap = None
        if s["streaming_wer"] is not None and s["whole_file_wer"] is not None:
            gap = 100 * (s["streaming_wer"] - s["whole_file_wer"])
        fas, fi, ep = s["final_after_stop_s"], s["first_interim_after_onset_s"], s["speech_final_after_speech_end_s"]
        ep_goal = s["endpointing_ms"] / 1000 + 0.25
        lines += [
            "## Local engine (tiny.en, int8, CPU), real-time streams through /stt-stream",
            "",
            f"{fas['n'] + s['final_before_stop']} clips, stopped 50 ms after the last loud frame; final after stop "
            f"is timed on the {fas['n']} where words were still pending at the stop ({s['final_before_stop']} had "
            "their last final before it). Latencies in ms."
            + (f" Every /stt-stream session had {s['keyterms']} keyterms (`--local-glossary`)." if s.get("keyterms")
               else ""),
            "",
            "| measure | p50 | p95 | goal | verdict |",
            "|---|---|---|---|---|",
            f"| final after stop | {_fmt(fas['p50'], 1000)} | {_fmt(fas['p95'], 1000)} | p50 ≤ 250, p95 ≤ 500 | "
            f"{_verdict(None if fas['p50'] is None else fas['p50'] <= 0.25 and fas['p95'] <= 0.5)} |",
            f"| speech_final after end of speech (endpointing {s['endpointing_ms']} ms) | {_fmt(ep['p50'], 1000)} | "
            f"{_fmt(ep['p95'], 1000)} | p50 ≤ {ep_goal * 1000:.0f} | "
            f"{_verdict(None if ep['p50'] is None else ep['p50'] <= ep_goal)} |",
            f"| first interim after speech onset | {_fmt(fi['p50'], 1000)} | {_fmt(fi['p95'], 1000)} | p50 ≤ 500 | "
            f"{_verdict(None if fi['p50'] is None else fi['p50'] <= 0.5)} |",
            *_delta_row(s, fi),
            "",
            f"Streaming WER {_fmt(s['streaming_wer'], 100, 1, ' %')} against faster-whisper's whole-file WER "
            f"{_fmt(s['whole_file_wer'], 100, 1, ' %')} (same model and clips): gap {_fmt(gap, 1, 1)} points, goal ≤ 1 "
            f"({_verdict(None if gap is None else gap <= 1.0)}).",
            "",
        ]
        if s["capacity"]:
            lines += _capacity_rows(s["capacity"])
            lines += [
                "",
                "Event-loop lag: how late the gateway's loop woke a 50 ms timer during the level (its "
                "`voxrelay_event_loop_lag_seconds` histogram, quantiles interpolated within buckets; ~0.5 ms idle).",
                "",
                f"Capacity (p95 final after stop ≤ 500 ms, no session behind): **{s['capacity_sessions']}** sessions; "
                f"goal ≥ 8 ({_verdict(s['capacity_sessions'] >= 8)}).",
                "",
            ]
    if data.get("long"):
        lines += _long_lines(data["long"])
    if data.get("compare"):
        from voxrelay.bench.compare import compare_lines

        lines += compare_lines(data["compare"])
        (out / "compare.txt").write_text("\n".join(compare_lines(data["compare"], table="text")))
    upload = data.get("upload")
    if upload:
        u = upload["summary"]
        alone, during = u["alone"], u["with_upload"]
        lines += [
            f"## Live dictation with a concurrent upload ({u['sessions']} sessions, local engine)",
            "",
            f"Final after stop (ms) of {u['sessions']} real-time /stt-stream sessions, alone and while a "
            f"{u['upload_audio_s']:.0f} s recording is transcribed through POST /v1/audio/transcriptions "
            "(only stops before the upload's answer count).",
            "",
            "| live sessions | final after stop p50 | p95 | n |",
            "|---|---|---|---|",
            f"| alone | {_fmt(alone['p50'], 1000)} | {_fmt(alone['p95'], 1000)} | {alone['n']} |",
            f"| with the upload | {_fmt(during['p50'], 1000)} | {_fmt(during['p95'], 1000)} | {during['n']} |",
            "",
            f"The upload (HTTP {u['upload_status']}): {u['upload_audio_s']:.0f} s of audio in "
            f"{u['upload_wall_s']:.1f} s, real-time factor {_fmt(u['upload_rtf'], 1, 3)}; WER "
            f"{_fmt(u['upload_wer'], 100, 1, ' %')} against the clips' references.",
            "",
        ]
    if data.get("keyterms"):
        lines += _keyterm_lines(data["keyterms"]["summary"])
    proxy = data.get("proxy")
    if proxy:
        cores = proxy.get("cores")
        pinned = (
            f"The gateway ran on core {cores['gateway']}, the clients and upstream on {cores['rig']}."
            if cores
            else "One core: the gateway shared it with the clients and the upstream."
        )
        if proxy.get("workers"):
            pinned = (f"The gateway ran as `serve --workers {proxy['workers']}`, unpinned: its workers shared every "
                      "core with the clients and the upstream; CPU and memory are all its processes' together.")
        lines += [
            "## Proxy path (--engine deepgram against a fake upstream on loopback)",
            "",
            "Latency of every stamped transcript, upstream send to client receive. *Steady*: sent while",
            "every stream was ready and streaming (the load at N concurrent streams; from 1 s after the last",
            "stream was ready to 0.5 s before the first one ended); *whole run*: ramp-up (all streams",
            f"connecting within ~1 s) and ramp-down included. {pinned}",
            "",
            "| streams | direct p50 / p99 ms | through gateway p50 / p99 ms | **added p50 / p99 ms** (steady) "
            "| added p50 / p99 ms (whole run) | ready p50 / p99 ms (direct → gateway) "
            "| gateway CPU per stream | memory per session |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in proxy["levels"]:
            lines.append(
                f"| {row['streams']} | {_fmt(row['direct_p50_ms'], 1, 2)} / {_fmt(row['direct_p99_ms'], 1, 2)} | "
                f"{_fmt(row['relayed_p50_ms'], 1, 2)} / {_fmt(row['relayed_p99_ms'], 1, 2)} | "
                f"**{_fmt(row['added_p50_ms'], 1, 2)} / {_fmt(row['added_p99_ms'], 1, 2)}** | "
                f"{_fmt(row.get('all_added_p50_ms'), 1, 2)} / {_fmt(row.get('all_added_p99_ms'), 1, 2)} | "
                f"{_fmt(row.get('ready_direct_p50_ms'), 1, 1)} / {_fmt(row.get('ready_direct_p99_ms'), 1, 1)} → "
                f"{_fmt(row.get('ready_relayed_p50_ms'), 1, 1)} / {_fmt(row.get('ready_relayed_p99_ms'), 1, 1)} | "
                f"{_fmt(row['gateway_cpu_per_stream_pct'], 1, 3, ' %')} | "
                f"{_fmt(row['memory_per_session_kb'], 1, 0, ' KB')} |"
            )
        failed = sum(row.get("failed_relayed", 0) + row.get("failed_direct", 0) for row in proxy["levels"])
        lines += [
            "",
            f"Streams that did not end cleanly: {failed}.",
            "Goals at 1000 streams: added p50 < 1 ms, p99 < 10 ms; < 200 KB per session.",
            "",
        ]
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    report = out / "bench.md"
    report.write_text("\n".join(lines))
    return report


def _capacity_rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| concurrent sessions | final after stop p50 | p95 | sessions behind | interims / s of audio "
        "| event-loop lag p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['sessions']} | {_fmt(row['final_after_stop_p50_s'], 1000)} | "
            f"{_fmt(row['final_after_stop_p95_s'], 1000)} | {row['sessions_behind']} | "
            f"{_fmt(row.get('interims_per_audio_s'), 1, 2)} | "
            f"{_fmt(row.get('loop_lag_p50_ms'), 1, 2)} / {_fmt(row.get('loop_lag_p99_ms'), 1, 2)} |"
        )
    return lines


def _long_lines(long: dict[str, Any]) -> list[str]:
    """The long-utterance part (issue 16): its goals, per-kind stop latency, the fitted line, capacity, the table."""
    from voxrelay.bench.length_plot import latency_table

    s = long["summary"]
    fas, ep, fi = s["final_after_stop_s"], s["speech_final_after_speech_end_s"], s["first_interim_after_onset_s"]
    fit = s["fit"]
    kinds = {k: sum(c["kind"] == k for c in long["clips"]) for k in s["final_after_stop_by_kind"]}
    ep_goal = s["endpointing_ms"] / 1000 + 0.15 + 1e-9  # 450 ms meets "endpointing + 150 ms" in float too
    gap = None
    if s["streaming_wer"] is not None and s["whole_file_wer"] is not None:
        gap = 100 * (s["streaming_wer"] - s["whole_file_wer"])
    lines = [
        "## Long utterances (5-20 s without a pause), real-time streams through /stt-stream",
        "",
        f"{s['clips']} clips ({', '.join(f'{n} {k}' for k, n in kinds.items())}; speech p50 "
        f"{_fmt(s['speech_s']['p50'], 1, 1)} s). *single* and *joined* are development material, built from the "
        "corpus clips the engine is tuned on (`voxrelay.bench.longset`); *report-only* clips come from `--long-set`. "
        f"Stopped 50 ms after the last loud frame; final after stop is timed on the {fas['n']} clips with words "
        f"pending at the stop ({s['final_before_stop']} had their last final before it). Goals: issue 16's. "
        "Latencies in ms.",
        "",
        "| measure | p50 | p95 | goal | verdict |",
        "|---|---|---|---|---|",
        f"| final after stop | {_fmt(fas['p50'], 1000)} | {_fmt(fas['p95'], 1000)} | p50 ≤ 120, p95 ≤ 200 | "
        f"{_verdict(None if fas['p50'] is None else fas['p50'] <= 0.12 and fas['p95'] <= 0.2)} |",
    ]
    for kind, k in s["final_after_stop_by_kind"].items():
        lines.append(f"| ... {kind} ({k['n']}) | {_fmt(k['p50'], 1000)} | {_fmt(k['p95'], 1000)} | | |")
    lines += [
        "| final after stop against seconds of speech, least squares | "
        f"slope **{_fmt(fit and fit['slope_ms_per_s'], 1, 1)} ms/s** | "
        f"intercept {_fmt(fit and fit['intercept_ms'])} ms | "
        "slope ≤ 5 ms/s | "
        f"{_verdict(None if fit is None else fit['slope_ms_per_s'] <= 5)} |",
        f"| speech_final after end of speech (endpointing {s['endpointing_ms']} ms) | {_fmt(ep['p50'], 1000)} | "
        f"{_fmt(ep['p95'], 1000)} | p50 ≤ {ep_goal * 1000:.0f} | "
        f"{_verdict(None if ep['p50'] is None else ep['p50'] <= ep_goal)} |",
        f"| first interim after speech onset | {_fmt(fi['p50'], 1000)} | {_fmt(fi['p95'], 1000)} | p50 ≤ 300 | "
        f"{_verdict(None if fi['p50'] is None else fi['p50'] <= 0.3)} |",
        "",
        f"Streaming WER {_fmt(s['streaming_wer'], 100, 2, ' %')} against faster-whisper's whole-file WER "
        f"{_fmt(s['whole_file_wer'], 100, 2, ' %')} on the same clips: gap {_fmt(gap, 1, 2)} points.",
        "",
    ]
    if s["capacity"]:
        lines += [
            *_capacity_rows(s["capacity"]),
            "",
            f"Capacity on long utterances (p95 final after stop ≤ 500 ms, no session behind): "
            f"**{s['capacity_sessions']}** sessions; goal ≥ 12 ({_verdict(s['capacity_sessions'] >= 12)}).",
            "",
        ]
    rows = [(c["name"], c["kind"], c["speech_s"], c["final_after_stop_s"]) for c in long["clips"]]
    return [*lines, "Final after stop against length (plot: `long_latency.svg`):", "", *latency_table(rows), ""]


def _long_plot(out: Path, data: dict[str, Any]) -> list[Path]:
    from voxrelay.bench.length_plot import LineFit, latency_svg

    long = data.get("long")
    points = [
        (c["speech_s"], c["final_after_stop_s"], c["kind"])
        for c in (long or {}).get("clips", [])
        if c["final_after_stop_s"] is not None
    ]
    if not long or not points:
        return []
    fit = long["summary"]["fit"]
    svg = latency_svg(points, None if fit is None else LineFit(**fit), "Final after stop, long utterances", 200)
    path = out / "long_latency.svg"
    path.write_text(svg)
    return [path]


def _ratio(pair: list[int] | None) -> str:
    return "n/a" if not pair else f"{pair[0]}/{pair[1]}"


def _keyterm_lines(k: dict[str, Any]) -> list[str]:
    """The keyterm part: recall and WER per set without → with keyterms, the corpus with a glossary, the cost."""
    lines = [
        "## Keyterms (local engine, real-time streams through /stt-stream, without → with keyterms)",
        "",
        "A keyterm counts when it appears in the finals (resp. in any interim) as whole words, case-insensitively.",
        "",
        "| set | clips | keyterms | recall in finals | recall in interims | WER of finals | runaway interims |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in k["groups"].items():
        n = g["keyterms"]
        lines.append(
            f"| {name} | {g['clips']} | {n} | {g['final_without']}/{n} → {g['final_with']}/{n} | "
            f"{g['interim_without']}/{n} → {g['interim_with']}/{n} | "
            f"{_fmt(g['wer_without'], 100, 1, ' %')} → {_fmt(g['wer_with'], 100, 1, ' %')} | "
            f"{_ratio(g.get('runaway_interims_without'))} → {_ratio(g.get('runaway_interims_with'))} |"
        )
    c = k["corpus"]
    lines += [
        "",
        f"Corpus ({c['clips']} clips) without keyterms and with the set's {c['glossary_terms']} keyterms as one "
        f"glossary: WER {_fmt(c.get('wer_without'), 100, 2, ' %')} → {_fmt(c.get('wer_with'), 100, 2, ' %')}; "
        f"runaway interims {_ratio(c.get('runaway_interims_without'))} → {_ratio(c.get('runaway_interims_with'))}, "
        f"runaway finals {c.get('runaway_finals_without', 'n/a')} → {c.get('runaway_finals_with', 'n/a')} "
        "(a runaway: over twice the reference's words plus 5, a decode looping to its token cap).",
        "",
        "| streams | keyterms | final after stop p50 / p95 ms (n) | final decode mean ms (n) | "
        "interim decode mean ms (n) |",
        "|---|---|---|---|---|",
    ]
    for part, cost in k["cost"].items():
        for key in ("without", "with"):
            x = cost[key]
            lines.append(
                f"| {part} | {key} | {_fmt(x['final_after_stop_p50_s'], 1000)} / "
                f"{_fmt(x['final_after_stop_p95_s'], 1000)} ({x['final_after_stop_n']}) | "
                f"{_fmt(x['decode_final_mean_s'], 1000)} ({x['decode_final_n']}) | "
                f"{_fmt(x['decode_interim_mean_s'], 1000)} ({x['decode_interim_n']}) |"
            )
    return [*lines, ""]


def _plots(out: Path, data: dict[str, Any]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    local = data.get("local")
    if local and local["final_after_stop_s"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        series = {
            "final after stop": local["final_after_stop_s"],
            "speech_final after end of speech": local["speech_final_after_speech_end_s"],
            "first interim after onset": local["first_interim_after_onset_s"],
        }
        ax.boxplot([[v * 1000 for v in vals] or [0] for vals in series.values()], tick_labels=list(series))
        ax.set_ylabel("ms")
        ax.set_title("Local engine latencies (real-time streams)")
        fig.tight_layout()
        made.append(out / "local_latency.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    if local and local["summary"]["capacity"]:
        rows = local["summary"]["capacity"]
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = [r["sessions"] for r in rows]
        ax.plot(xs, [(r["final_after_stop_p50_s"] or 0) * 1000 for r in rows], marker="o", label="p50")
        ax.plot(xs, [(r["final_after_stop_p95_s"] or 0) * 1000 for r in rows], marker="o", label="p95")
        ax.axhline(500, color="grey", linestyle="--", label="p95 goal")
        ax.set_xlabel("concurrent real-time sessions")
        ax.set_ylabel("final after stop, ms")
        ax.legend()
        fig.tight_layout()
        made.append(out / "local_capacity.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    proxy = data.get("proxy")
    if proxy and proxy["levels"]:
        rows = proxy["levels"]
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = [r["streams"] for r in rows]
        for key, label, style in [
            ("added_p50_ms", "added p50 (steady)", "-"),
            ("added_p99_ms", "added p99 (steady)", "-"),
            ("all_added_p50_ms", "added p50 (whole run)", "--"),
            ("all_added_p99_ms", "added p99 (whole run)", "--"),
        ]:
            ax.plot(xs, [r.get(key) or 0 for r in rows], marker="o", linestyle=style, label=label)
        ax.axhline(10, color="grey", linestyle=":", label="p99 goal at 1000 streams")
        ax.axhline(1, color="lightgrey", linestyle=":", label="p50 goal at 1000 streams")
        ax.set_xscale("log")
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("gateway added latency, ms")
        ax.legend()
        fig.tight_layout()
        made.append(out / "proxy_latency.png")
        fig.savefig(made[-1], dpi=100)
        plt.close(fig)
    return made
