"""The soak tool's short run (the 1,000-session run is documented in docs/reliability.md)."""

from __future__ import annotations

import asyncio

from voxrelay.testing.soak import soak


def test_short_soak_leaves_nothing_behind() -> None:
    result = asyncio.run(soak(sessions=100, kill=0.3, seconds=1.5, memory_tolerance=0.10))
    assert result["outcomes"] == {"stopped": 70, "killed": 30}, result
    assert result["active_sessions"] == 0 and result["upstream_connections"] == 0, result
    assert result["engine_streams"] == 0 and result["leaked_tasks"] <= 0, result
    assert result["ok"], result
