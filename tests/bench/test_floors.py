"""Stack floors: each floor app relays every stamped transcript, and the runner measures it.

One stack per kind of app (the FastAPI app, websockets' handler, the RSGI app), each a
real server subprocess against the fast fake upstream; a few streams for one second.
"""

from __future__ import annotations

from voxrelay.bench.floors import format_table, run_floors


def test_every_floor_app_relays_every_transcript() -> None:
    stacks = ["uvicorn-sansio", "websockets", "granian-rsgi"]
    results = run_floors(stacks, [5], 1.0, rounds=1, stagger_s=0.2)
    assert [row["stack"] for row in results.rows] == stacks
    for row in results.rows:
        assert row["failed_relayed"] == 0, row
        assert row["messages_direct"] == 5 * 5, row  # 1 s of audio: four interims and a final per stream
        assert row["messages_relayed"] == row["messages_direct"], row
        assert row["cpu_pct"] > 0 and row["ready_p99_ms"] is not None
    # granian's RSGI close(1000) reaches the client without a code: counted apart, and shown in the table.
    assert [row["no_close_code"] for row in results.rows] == [0, 0, 5]
    table = format_table(results)
    assert "| granian-rsgi | 5 |" in table and "(+no code)" in table
