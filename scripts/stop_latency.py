"""Final after stop on long utterances, A/B interleaved in one process (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/stop_latency.py --corpus DIR --reps 3 \
        --config before:max_segment_s=15 --config after:max_segment_s=6 [--out run.json]
    PYTHONPATH=src .venv/bin/python scripts/stop_latency.py --report run1.json run2.json ...

`first=S,retry=S` in a --config set the streams' `InterimPacer.first_s` / `retry_s` (as in first_interim.py).
--glossary: every stream is configured with all 46 keyterms of tests/fixtures/keyterms (issue 13's
long glossary that does not help; on the corpus it made interims loop).

One `LocalEngine` per configuration, all loaded at once; every clip is streamed at real-time pace
(50 ms frames, interims on, endpointing 300 ms), cut 50 ms after its last word and stopped, once per
configuration in turn (the order rotates every repetition), so machine load hits every configuration
alike. Measures, per clip: stop -> last final (what the benchmark calls final after stop; the stream's
own `close`, no WebSocket in between), the transcript's WER, CPU seconds of the decode jobs, how long the
stop's final waited in the decode queue (behind an interim already running), and the first interim after
onset (the benchmark's energy gate), and the interims that ran away (`bench.keyterms.runaway`: more
than twice the reference's words + 5; runaway / all). Prints medians, p95 and the least-squares slope of
latency against speech length (ms per second). Runs against any checkout: `PYTHONPATH=/other/src` measures that one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Literal

import numpy as np

from voxrelay.bench.common import RATE, load_clips
from voxrelay.bench.keyterms import runaway
from voxrelay.bench.wer import wer
from voxrelay.engines.base import EngineObserver, FinalResult, InterimResult, StreamConfig
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings

_CHUNK = RATE // 20


def parse_config(text: str) -> tuple[str, dict[str, object]]:
    name, _, rest = text.partition(":")
    options: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, value = item.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


class Jobs(EngineObserver):
    def __init__(self) -> None:
        self.run_s = {"final": 0.0, "interim": 0.0, "file": 0.0}
        self.count = {"final": 0, "interim": 0, "file": 0}
        self.last_final_wait_s = 0.0
        self.last_final_run_s = 0.0

    def job_timing(self, kind: Literal["final", "interim", "file"], wait_s: float, run_s: float) -> None:
        self.run_s[kind] += run_s
        self.count[kind] += 1
        if kind == "final":
            self.last_final_wait_s = wait_s
            self.last_final_run_s = run_s


async def one(
    engine: LocalEngine, pcm: np.ndarray, onset: float, keyterms: tuple[str, ...] = (),
    pacer: dict[str, float] | None = None,
) -> tuple[float, str, int, float, list[str]]:
    """(stop -> last final, transcript, finals, first interim after onset (s), the interims' texts)."""
    config = StreamConfig(endpointing_ms=300, interim_results=True, vad_events=False, keyterms=keyterms)
    stream = await engine.open(config)
    if pacer:  # the stream's InterimPacer thresholds, as scripts/first_interim.py sets them
        interims = stream._interims
        interims.first_s = pacer.get("first", interims.first_s)
        interims.retry_s = pacer.get("retry", interims.retry_s)
    audio = (pcm.clip(-1, 1) * 32767).astype("<i2").astype(np.float32) / 32768.0
    finals: list[tuple[float, FinalResult]] = []
    interims: list[float] = []
    texts: list[str] = []

    async def collect() -> None:
        async for event in stream.events():
            if isinstance(event, FinalResult):
                finals.append((time.perf_counter(), event))
            elif isinstance(event, InterimResult):
                interims.append(time.perf_counter())
                texts.append(event.transcript)

    collector = asyncio.create_task(collect())
    began = time.perf_counter()
    for i, offset in enumerate(range(0, len(audio), _CHUNK)):
        delay = began + (i + 1) * 0.05 - time.perf_counter()  # a frame leaves when its last sample is spoken
        if delay > 0:
            await asyncio.sleep(delay)
        await stream.send_audio(audio[offset : offset + _CHUNK])
    stop = time.perf_counter()
    await stream.close()
    await collector
    after = [t - stop for t, _ in finals if t >= stop]
    text = " ".join(f.transcript for _, f in finals if f.transcript)
    first = interims[0] - began - onset if interims else float("nan")
    return (after[-1] if after else float("nan")), text, len(finals), first, texts


def pct(values: list[object]) -> str:
    ms = np.array(values, dtype=float) * 1000
    ms = ms[~np.isnan(ms)]
    return f"{np.percentile(ms, 50):.0f} / {np.percentile(ms, 95):.0f}" if len(ms) else "-"


def summarize(rows: list[dict[str, object]], names: list[str], cpu: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"\n{'config':12s} {'p50 ms':>7s} {'p95 ms':>7s} {'max ms':>7s} {'slope ms/s':>10s} {'WER %':>6s} "
          f"{'final s':>8s} {'interim s':>9s} {'interims':>8s} {'wait p50/p95':>12s} {'1st interim p50/p95':>19s} "
          f"{'runaway':>9s}")
    for name in names:
        mine = [r for r in rows if r["config"] == name]
        lat = np.array([r["latency_s"] for r in mine], dtype=float) * 1000
        length = np.array([r["speech_s"] for r in mine], dtype=float)
        ok = ~np.isnan(lat)
        slope = float(np.polyfit(length[ok], lat[ok], 1)[0]) if ok.sum() > 1 else float("nan")
        w = 100 * wer([str(r["reference"]) for r in mine], [str(r["text"]) for r in mine])  # pooled over reps
        run_s, count = cpu[name]["run_s"], cpu[name]["count"]
        runaways = sum(int(r.get("runaway_interims", 0)) for r in mine)  # type: ignore[call-overload]
        sent = sum(int(r.get("interims", 0)) for r in mine)  # type: ignore[call-overload]
        print(f"{name:12s} {np.percentile(lat[ok], 50):7.0f} {np.percentile(lat[ok], 95):7.0f} {lat[ok].max():7.0f} "
              f"{slope:10.1f} {w:6.2f} {run_s['final']:8.1f} {run_s['interim']:9.1f} {count['interim']:8.0f} "
              f"{pct([r['stop_final_wait_s'] for r in mine]):>12s} {pct([r['first_interim_s'] for r in mine]):>19s} "
              f"{runaways:4d}/{sent}  stop's decode p50/p95 {pct([r.get('stop_final_run_s', np.nan) for r in mine])}")


def report(paths: list[str]) -> None:
    """The summary of runs saved with --out (e.g. one checkout per process, alternated), pooled by config name."""
    rows: list[dict[str, object]] = []
    cpu: dict[str, dict[str, dict[str, float]]] = {}
    for path in paths:
        run = json.loads(Path(path).read_text())
        rows += run["rows"]
        for name, totals in run["cpu"].items():
            mine = cpu.setdefault(name, {"run_s": {}, "count": {}})
            for part in ("run_s", "count"):
                for kind, value in totals[part].items():
                    mine[part][kind] = mine[part].get(kind, 0) + value
    summarize(rows, list(cpu), cpu)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus")
    parser.add_argument("--config", action="append", help="NAME:option=value,option=value")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("--glossary", action="store_true", help="every stream gets the keyterm set's 46 keyterms")
    parser.add_argument("--report", nargs="+", help="only summarize these --out files, pooled by config name")
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return
    if not args.corpus or not args.config:
        parser.error("--corpus and --config are needed (or --report)")
    clips = load_clips(Path(args.corpus), subsets=("real", "synth"))
    configs = [parse_config(c) for c in args.config]
    terms: tuple[str, ...] = ()
    if args.glossary:  # issue 13's worst case: a long glossary that has nothing to do with the speech
        from voxrelay.bench.keyterms import find_keyterm_set, glossary, load_keyterm_set

        terms = glossary(load_keyterm_set(find_keyterm_set()))
    engines: dict[str, LocalEngine] = {}
    jobs: dict[str, Jobs] = {}
    pacers = {name: {k: float(options.pop(k)) for k in ("first", "retry") if k in options} for name, options in configs}
    for name, options in configs:
        engines[name] = LocalEngine(LocalSettings(**options))
        jobs[name] = Jobs()
        engines[name].observe(jobs[name])
        await engines[name].start()
    rows: list[dict[str, object]] = []
    names = [n for n, _ in configs]
    for rep in range(args.reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for clip in clips:
            for name in order:
                pcm, onset = clip.trimmed(), clip.speech_start
                latency, text, n_finals, first, texts = await one(engines[name], pcm, onset, terms, pacers[name])
                rows.append({"config": name, "rep": rep, "clip": clip.name, "speech_s": clip.speech_end -
                             clip.speech_start, "latency_s": latency, "text": text, "finals": n_finals,
                             "reference": clip.reference, "first_interim_s": first,
                             "stop_final_wait_s": jobs[name].last_final_wait_s,
                             "stop_final_run_s": jobs[name].last_final_run_s, "interims": len(texts),
                             "runaway_interims": sum(runaway(t, clip.reference) for t in texts)})
            print(f"rep {rep} {clip.name}: " + "  ".join(
                f"{r['config']} {1000 * r['latency_s']:.0f} ms" for r in rows[-len(order):]), flush=True)
    for engine in engines.values():
        await engine.stop()
    cpu = {name: {"run_s": jobs[name].run_s, "count": jobs[name].count} for name in names}
    summarize(rows, names, cpu)  # type: ignore[arg-type]
    if args.out:
        saved = json.dumps({"configs": configs, "rows": rows, "cpu": cpu}, indent=1)
        await asyncio.to_thread(Path(args.out).write_text, saved)


if __name__ == "__main__":
    asyncio.run(main())
