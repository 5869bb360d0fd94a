"""The box's exposition from several workers' texts: labelled, merged, rendered (no I/O, no event loop)."""

from __future__ import annotations

from collections import Counter

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from voxrelay.ops.metrics import Metrics
from voxrelay.ops.metrics_merge import box_exposition


def worker_text(sessions: int, *, live: int = 0, interims: tuple[float, ...] = (), reconnects: int = 0) -> bytes:
    """A real registry's exposition: `sessions` stopped /stt-stream sessions, `live` open, first interims."""
    metrics = Metrics("deepgram", lambda: live, process=False)
    for _ in range(sessions):
        session = metrics.session("stt-stream")
        session.closed("stopped", 1.5)
    for seconds in interims:
        metrics.first_interim.labels("deepgram", "stt-stream").observe(seconds)
    for _ in range(reconnects):
        metrics.upstream_reconnect("ok")
    return metrics.render()


def families(text: bytes) -> dict[str, Metric]:
    found = {family.name: family for family in text_string_to_metric_families(text.decode())}
    assert len(found) == len(list(text_string_to_metric_families(text.decode()))), "a family name came out twice"
    return found


def samples(text: bytes, name: str) -> list[tuple[dict[str, str], float]]:
    return [(s.labels, s.value) for f in families(text).values() for s in f.samples if s.name == name]


def reference(text: bytes, worker: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], float]]]]:
    """What prometheus_client's parser reads in one worker's text, with the worker's label added by hand."""
    return [(f.name, f.type, f.documentation, [(s.name, {"worker": worker, **s.labels}, s.value) for s in f.samples])
            for f in text_string_to_metric_families(text.decode())]


def test_the_box_reads_as_every_workers_families_with_the_worker_label_per_the_reference_parser() -> None:
    busy, quiet = Metrics("deepgram", lambda: 12), Metrics("deepgram", lambda: 0)  # process_*, python_* too
    for endpoint in ("stt-stream", "v1-listen", "v1-realtime"):
        for outcome in ("stopped", "disconnected", "error"):
            busy.session(endpoint).closed(outcome, 2.0)
        busy.session(endpoint).refused("unauthorized")
        busy.first_interim.labels("deepgram", endpoint).observe(0.3)
    busy.file_job("ok", audio_s=3.0, decode_s=0.7)
    busy.token_refused("expired")
    quiet.session("stt-stream").closed("stopped", 1.0)
    texts = {0: busy.render(), 1: quiet.render()}
    expected: dict[str, tuple[str, str, list[tuple[str, dict[str, str], float]]]] = {}
    for index, text in texts.items():
        for name, kind, documentation, worker_samples in reference(text, str(index)):
            expected.setdefault(name, (kind, documentation, []))[2].extend(worker_samples)
    box = families(box_exposition(texts))
    up = box.pop("voxrelay_worker_up")
    assert [(s.labels, s.value) for s in up.samples] == [({"worker": "0"}, 1.0), ({"worker": "1"}, 1.0)]
    assert {f.name: (f.type, f.documentation, [(s.name, s.labels, s.value) for s in f.samples])
            for f in box.values()} == expected


def test_counters_of_every_worker_come_out_labelled_with_one_help_and_type() -> None:
    box = box_exposition({0: worker_text(3), 1: worker_text(5)})
    stopped = {"engine": "deepgram", "endpoint": "stt-stream", "outcome": "stopped"}
    assert samples(box, "voxrelay_sessions_total") == [({"worker": "0", **stopped}, 3.0),
                                                       ({"worker": "1", **stopped}, 5.0)]
    audio = samples(box, "voxrelay_audio_seconds_total")
    assert sum(value for _, value in audio) == 8 * 1.5
    lines = box.decode().splitlines()
    assert lines.count("# TYPE voxrelay_sessions_total counter") == 1
    assert sum(line.startswith("# HELP voxrelay_sessions_total ") for line in lines) == 1
    created = samples(box, "voxrelay_sessions_created")  # the counters' creation times: per worker too
    assert [labels["worker"] for labels, _ in created] == ["0", "1"]


def test_histograms_keep_buckets_sum_count_and_created_per_worker() -> None:
    box = box_exposition({0: worker_text(0, interims=(0.04, 0.3)), 1: worker_text(0, interims=(0.3, 2.5, 40.0))})
    family = families(box)["voxrelay_first_interim_seconds"]
    assert family.type == "histogram"
    by_worker: dict[str, dict[str, float]] = {"0": {}, "1": {}}
    for sample in family.samples:
        key = sample.name.removeprefix("voxrelay_first_interim_seconds") + sample.labels.get("le", "")
        by_worker[sample.labels["worker"]][key] = sample.value
    assert by_worker["0"]["_bucket0.05"] == 1 and by_worker["0"]["_bucket+Inf"] == 2 and by_worker["0"]["_count"] == 2
    assert by_worker["1"]["_bucket0.05"] == 0 and by_worker["1"]["_bucket30.0"] == 2
    assert by_worker["1"]["_bucket+Inf"] == by_worker["1"]["_count"] == 3
    assert by_worker["0"]["_sum"] == 0.04 + 0.3 and by_worker["1"]["_sum"] == 0.3 + 2.5 + 40.0
    assert len(by_worker["0"]) == len(by_worker["1"]) == 15 + 2  # 14 bounds and +Inf, _sum, _count
    created = samples(box, "voxrelay_first_interim_seconds_created")
    assert [labels["worker"] for labels, _ in created] == ["0", "1"]


def test_gauges_read_at_scrape_time_come_out_per_worker() -> None:
    box = box_exposition({0: worker_text(0, live=4), 1: worker_text(0, live=7)})
    assert samples(box, "voxrelay_active_sessions") == [({"worker": "0", "engine": "deepgram"}, 4.0),
                                                        ({"worker": "1", "engine": "deepgram"}, 7.0)]
    assert families(box)["voxrelay_active_sessions"].type == "gauge"


def test_a_family_only_one_worker_has_holds_that_workers_series() -> None:
    box = box_exposition({0: worker_text(1), 1: worker_text(1, reconnects=2)})
    assert samples(box, "voxrelay_upstream_reconnects_total") == [
        ({"worker": "1", "engine": "deepgram", "result": "ok"}, 2.0)
    ]
    # A family neither has a series of (no label values yet) is still described once, with no samples.
    assert families(box)["voxrelay_tokens_minted"].samples == []
    assert box.decode().count("# TYPE voxrelay_tokens_minted_total counter") == 1


def test_a_worker_label_already_present_is_kept_as_exported_worker() -> None:
    text = (b'# HELP jobs_total Jobs.\n# TYPE jobs_total counter\n'
            b'jobs_total{kind="a,worker=\\"x\\"} {",worker="pool-a"} 2.0\n')
    box = box_exposition({0: text, 1: text})
    labels = {"kind": 'a,worker="x"} {', "exported_worker": "pool-a"}
    assert samples(box, "jobs_total") == [({"worker": "0", **labels}, 2.0), ({"worker": "1", **labels}, 2.0)]


def test_samples_without_labels_or_with_empty_braces_or_a_timestamp_get_the_label() -> None:
    text = b"# TYPE a gauge\na 1.0\n# TYPE b gauge\nb{} 2.0\n# TYPE c gauge\nc{x=\"y\"} 3.0 1700000000000\n"
    assert box_exposition({3: text}).decode().splitlines()[:6] == [
        "# TYPE a gauge", 'a{worker="3"} 1.0', "# TYPE b gauge", 'b{worker="3"} 2.0', "# TYPE c gauge",
        'c{worker="3",x="y"} 3.0 1700000000000',
    ]


def test_a_worker_that_did_not_answer_is_absent_and_its_up_is_zero() -> None:
    box = box_exposition({1: worker_text(2), 0: None, 2: b"not the text format {{{\n", 3: b"\xff\xfe",
                          4: b"# TYPE x gauge\nx\n"})
    assert samples(box, "voxrelay_worker_up") == [({"worker": "0"}, 0.0), ({"worker": "1"}, 1.0),
                                                  ({"worker": "2"}, 0.0), ({"worker": "3"}, 0.0),
                                                  ({"worker": "4"}, 0.0)]
    workers = Counter(s.labels.get("worker") for f in families(box).values() for s in f.samples
                      if f.name != "voxrelay_worker_up")
    assert set(workers) == {"1"}


def test_workers_come_out_in_index_order_whatever_order_they_answered_in() -> None:
    first, second = worker_text(3), worker_text(5)
    assert box_exposition({1: second, 0: first}) == box_exposition({0: first, 1: second})


def test_a_family_whose_type_differs_between_workers_keeps_the_first_workers() -> None:
    gauge = b"# HELP x X.\n# TYPE x gauge\nx 1.0\n"
    other = b"# HELP x X.\n# TYPE x untyped\nx 2.0\n# HELP y Y.\n# TYPE y gauge\ny 3.0\n"
    box = box_exposition({0: gauge, 1: other})
    assert samples(box, "x") == [({"worker": "0"}, 1.0)]  # Prometheus would refuse a family of two types
    assert samples(box, "y") == [({"worker": "1"}, 3.0)]
