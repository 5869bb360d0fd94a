"""Stack floors: each floor app relays every stamped transcript, and the runner measures it.

One stack per kind of app (the FastAPI app, websockets' handler, the RSGI app), each a
real server subprocess against the fast fake upstream; a few streams for one second.
"""

from __future__ import annotations

import sys

from voxrelay.bench.floors import format_table, run_floors, server_command


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


def test_a_stack_can_be_served_by_another_interpreter() -> None:
    # `stack@python`: the server runs on that interpreter, the rig on this one (Python versions compared).
    command, _env = server_command("voxrelay@/opt/py/bin/python", 1234, "ws://127.0.0.1:1", 10)
    assert command[:3] == ["/opt/py/bin/python", "-m", "voxrelay.cli"]
    command, _env = server_command("websockets", 1234, "ws://127.0.0.1:1", 10)
    assert command[0] == sys.executable and command[command.index("--stack") + 1] == "websockets"
    # A real run with the interpreter named (this one: CI has no other with voxrelay installed).
    stack = f"uvicorn-sansio@{sys.executable}"
    results = run_floors([stack], [3], 1.0, rounds=1, stagger_s=0.2)
    [row] = results.rows
    assert row["stack"] == stack and row["failed_relayed"] == 0
    assert row["messages_relayed"] == row["messages_direct"] == 3 * 5, row
    assert f"| {stack} | 3 |" in format_table(results)
