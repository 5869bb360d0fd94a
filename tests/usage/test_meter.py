"""The meter on its own (a real SQLite file, a clock the test moves): months, and its cost per frame."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from tests.usage.common import KEY_ID, usage_settings
from voxrelay.usage.database import create_engine
from voxrelay.usage.meter import Meter


async def test_a_new_month_gives_every_key_its_quota_back(tmp_path: Path) -> None:
    now = [datetime(2026, 12, 31, 23, 59, 58)]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    try:
        meter = Meter(usage_settings("unused", quota_audio_s=3.0), engine, clock=lambda: now[0])
        await meter.start()
        session = meter.open("s1", KEY_ID, "stt-stream", "echo", "m")
        assert meter.add(session, 2.8) == "warning"
        assert meter.add(session, 3.1) == "exceeded"
        meter.close(session, "quota")
        assert meter.retry_after(KEY_ID) == 2  # seconds to 2027-01-01 00:00 UTC
        now[0] = datetime(2027, 1, 1, 0, 0, 1)
        await meter.flush()  # the month is read from the clock at each flush
        assert meter.used(KEY_ID) == 0.0 and meter.retry_after(KEY_ID) is None
        rows = await meter.store.sessions()
        assert [(r["audio_seconds"], r["started_at"].month) for r in rows] == [(3.1, 12)]  # counted in its month
        await meter.stop()
    finally:
        await engine.dispose()


def test_metering_a_frame_costs_microseconds(tmp_path: Path) -> None:
    meter = Meter(usage_settings("unused", quota_audio_s=1e9), create_engine(f"sqlite+aiosqlite:///{tmp_path}/u.db"))
    session = meter.open("s1", KEY_ID, "stt-stream", "echo", "m")
    frames = 100_000
    began = time.perf_counter()
    for i in range(frames):
        meter.add(session, i * 0.02)
    per_frame = (time.perf_counter() - began) / frames
    # ~1 µs here; 50 µs would still be 0.25 % of a core per 20 ms-frame stream. Far above it, something does I/O.
    assert per_frame < 50e-6, f"{per_frame * 1e6:.1f} µs per frame"


async def test_a_flush_writes_every_live_row_when_they_take_several_statements(tmp_path: Path) -> None:
    """Rows go in statements of a hundred (the loop runs between them): 250 live sessions, all written."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}")
    try:
        meter = Meter(usage_settings("unused"), engine)
        await meter.start()
        sessions = [meter.open(f"s{i}", KEY_ID, "stt-stream", "echo", "m") for i in range(250)]
        for i, session in enumerate(sessions):
            meter.add(session, float(i))
        await meter.flush()
        rows = await meter.store.sessions()
        assert sorted(r["audio_seconds"] for r in rows) == [float(i) for i in range(250)]
        await meter.stop()
    finally:
        await engine.dispose()
