"""CPU cost of one box-wide `/metrics` answer (`voxrelay.ops.metrics_merge.box_exposition`) for N workers.

Each worker's registry is a real `Metrics` (process collectors included) that has recorded 1000
sessions spread over every endpoint and outcome, with their latency histograms, error codes, file
jobs, tokens and engine jobs: every label set a busy worker shows. Label sets, not session counts,
set the text's size, so this is the size of a busy worker's exposition.

Prints the size of one worker's text and, as median and p99 over the rounds, the time to render
one registry alone (what a scrape costs a single gateway), to render N and merge them line by
line (what `/metrics` of a box does), and the same merge done the other way: prometheus_client's
parser, relabelled families and `generate_latest` (the alternative `metrics_merge.py` rejects).

    flock -x /tmp/voxrelay-bench.lock python scripts/metrics_merge_cost.py --workers 2 --rounds 300
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from voxrelay.ops.metrics import Endpoint, Metrics, Outcome
from voxrelay.ops.metrics_merge import box_exposition

ENDPOINTS: tuple[Endpoint, ...] = ("stt-stream", "v1-listen", "v1-realtime", "v1-audio-transcriptions")
OUTCOMES: tuple[Outcome, ...] = ("stopped", "disconnected", "error", "refused")
CODES = ("bad_request", "limit_exceeded", "engine_error", "unauthorized", "draining", "TOO_MANY_REQUESTS")


def busy_worker(sessions: int, rng: random.Random) -> Metrics:
    metrics = Metrics("deepgram", lambda: sessions // 10)
    for i in range(sessions):
        session = metrics.session(ENDPOINTS[i % len(ENDPOINTS)])
        session.audio_fed()
        session.sent("interim")
        session.stop_requested()
        session.sent("final")
        outcome = OUTCOMES[i % len(OUTCOMES)]
        if outcome == "refused":
            session.refused(CODES[i % len(CODES)])
        else:
            session.error(CODES[i % len(CODES)]) if outcome == "error" else None
            session.closed(outcome, rng.uniform(1, 30))
        metrics.observe_job(("final", "interim", "file")[i % 3], rng.uniform(0, 0.1), rng.uniform(0, 0.5))
        metrics.event_loop_lag.observe(rng.uniform(0, 0.01))
        if i % 10 == 0:
            metrics.file_job(("ok", "bad_request", "refused", "disconnected", "error")[i % 5], audio_s=12.0,
                             decode_s=rng.uniform(0.5, 5.0))
            metrics.token_minted()
            metrics.token_refused(("expired", "invalid_or_reused")[i % 2])
            metrics.upstream_reconnect(("ok", "failed")[i % 2])
    return metrics


class _Families(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def parsed_exposition(texts: dict[int, bytes]) -> bytes:
    """The box's text through prometheus_client's parser and renderer (no up family: the parse is the point)."""
    merged: dict[str, Metric] = {}
    for index, text in texts.items():
        for family in text_string_to_metric_families(text.decode()):
            into = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            into.samples += [s._replace(labels={"worker": str(index), **s.labels}) for s in family.samples]
    return generate_latest(_Families(list(merged.values())))


def timed(work: Callable[[], object], rounds: int) -> tuple[float, float]:
    """(median, p99) of `work`'s wall time in ms."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sessions", type=int, default=1000, help="sessions each worker has recorded")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    rng = random.Random(17)
    workers = [busy_worker(args.sessions, rng) for _ in range(args.workers)]
    texts = [w.render() for w in workers]
    merged = box_exposition(dict(enumerate(texts)))
    lines = texts[0].count(b"\n"), merged.count(b"\n")
    print(f"one worker's text: {len(texts[0])} bytes, {lines[0]} lines; "
          f"the box's ({args.workers} workers): {len(merged)} bytes, {lines[1]} lines")
    own = timed(workers[0].render, args.rounds)
    box = timed(lambda: box_exposition({i: w.render() for i, w in enumerate(workers)}), args.rounds)
    merge = timed(lambda: box_exposition(dict(enumerate(texts))), args.rounds)
    parsed = timed(lambda: parsed_exposition(dict(enumerate(texts))), args.rounds)
    print(f"render one registry (a single gateway's /metrics): median {own[0]:.2f} ms, p99 {own[1]:.2f} ms")
    print(f"render {args.workers} registries + merge them (a box scrape's CPU, all workers together): "
          f"median {box[0]:.2f} ms, p99 {box[1]:.2f} ms")
    print(f"the merge alone, line by line (metrics_merge.box_exposition): "
          f"median {merge[0]:.2f} ms, p99 {merge[1]:.2f} ms")
    print(f"the merge alone, parsed and rendered again (prometheus_client): "
          f"median {parsed[0]:.2f} ms, p99 {parsed[1]:.2f} ms")


if __name__ == "__main__":
    main()
