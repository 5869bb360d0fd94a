"""LoopLagProbe on a real event loop: a blocked loop shows its lag, an idle loop shows none."""

from __future__ import annotations

import asyncio
import time

import httpx
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes import CountingEngine
from tests.support import ServerThread
from voxrelay.ops.looplag import LAG_BUCKETS, LoopLagProbe
from voxrelay.ops.metrics import Metrics
from voxrelay.settings import Settings


class _SignallingProbe(LoopLagProbe):
    """Sets `sampled` at every sample, so a test can wait for the next one instead of sleeping."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sampled = asyncio.Event()

    def _record(self, lag: float) -> None:
        super()._record(lag)
        self.sampled.set()

    async def next_sample(self) -> float:
        self.sampled.clear()
        await self.sampled.wait()
        return self.samples[-1]


def _histogram() -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    return registry, Histogram("lag_seconds", "test", buckets=LAG_BUCKETS, registry=registry)


def test_a_blocked_loop_shows_its_lag() -> None:
    registry, histogram = _histogram()

    async def run() -> float:
        probe = _SignallingProbe(histogram, interval=0.05)
        probe.start()
        await probe.next_sample()  # the probe is now asleep on its next 50 ms timer
        asyncio.get_running_loop().call_soon(time.sleep, 0.2)  # a callback that blocks the loop for 200 ms
        lag = await probe.next_sample()
        await probe.stop()
        return lag

    lag = asyncio.run(run())
    # The timer was due at most 50 ms after the block began and ran when it ended.
    assert lag >= 0.15
    assert (registry.get_sample_value("lag_seconds_sum") or 0.0) >= 0.15
    assert registry.get_sample_value("lag_seconds_bucket", {"le": "0.1"}) == 1.0  # the first, unblocked sample
    assert registry.get_sample_value("lag_seconds_count") == 2.0


def test_an_idle_loop_has_little_lag() -> None:
    registry, histogram = _histogram()

    async def run() -> dict[str, float | None]:
        probe = _SignallingProbe(histogram, interval=0.01)
        probe.start()
        for _ in range(50):
            await probe.next_sample()
        await probe.stop()
        return probe.percentiles()

    stats = asyncio.run(run())
    assert stats["p99"] is not None and stats["p50"] is not None
    assert 0.0 <= stats["p50"] <= stats["p99"] < 0.1
    assert registry.get_sample_value("lag_seconds_count") == 50.0


def test_stop_ends_sampling_and_keeps_the_samples() -> None:
    async def run() -> tuple[int, bool]:
        probe = _SignallingProbe(interval=0.01)
        probe.start()
        probe.start()  # a second start does not start a second task
        await probe.next_sample()
        await probe.stop()
        await probe.stop()
        tasks = [t for t in asyncio.all_tasks() if t.get_name() == "loop-lag-probe"]
        return len(probe.samples), bool(tasks)

    count, still_running = asyncio.run(run())
    assert count == 1 and not still_running
    assert LoopLagProbe().percentiles() == {"p50": None, "p99": None, "max": None}


def test_metrics_export_the_lag_histogram() -> None:
    metrics = Metrics("local", lambda: 0, process=False)
    metrics.event_loop_lag.observe(0.004)
    text = metrics.render().decode()
    assert 'voxrelay_event_loop_lag_seconds_bucket{le="0.005"} 1.0' in text
    assert 'voxrelay_event_loop_lag_seconds_bucket{le="0.003"} 0.0' in text


def _lag_count(server: ServerThread) -> float:
    text = httpx.get(server.http("/metrics"), timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "voxrelay_event_loop_lag_seconds_count":
                return sample.value
    return 0.0


def test_the_gateway_samples_its_loop_while_it_serves() -> None:
    server = ServerThread(Settings(port=0), CountingEngine()).start()
    probe = server.gateway.metrics.loop_lag
    try:
        assert probe.running
        deadline = time.monotonic() + 30
        while _lag_count(server) < 2 and time.monotonic() < deadline:
            pass  # each scrape is a real request; a sample lands every 50 ms
        assert _lag_count(server) >= 2
    finally:
        server.stop()
    assert not probe.running  # the lifespan stopped it with the app
