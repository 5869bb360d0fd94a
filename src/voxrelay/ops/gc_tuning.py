"""Garbage-collector settings for the server process, so collections do not stall live streams.

A gateway holds many long-lived objects: each live session has ~140 (its tasks, queues,
protocol and upstream objects), and a closed session leaves them in reference cycles
that only the collector frees. With CPython's default thresholds (700, 10, 10), a
thousand proxied streams meant hundreds of young collections a second and a full one
every second or two, each walking every live object with the event loop stopped: full
collections of 60-130 ms, and p99 relay latency five times what it was with the
collector off (docs/benchmarks.md). So the server, once its app is built:

- freezes what start-up made (imports, the app, the engine's objects): those are never
  garbage, and frozen objects are left out of every later collection;
- collects the youngest generation after `YOUNG_THRESHOLD` net allocations instead of
  700, and older generations more rarely still, so collections are fewer; cyclic garbage
  is still freed, in bigger batches. A young collection walks up to that many objects:
  10,000 gave pauses of ~3 ms (9 ms at most) while a thousand sessions connected, 50,000
  pauses of 7-19 ms; once sessions are open, neither collected at all.

Only `voxrelay serve` calls this: a library user's process keeps its own settings.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_serving"]

YOUNG_THRESHOLD = 10_000
_OLDER_THRESHOLDS = (50, 100)


def tune_for_serving() -> None:
    """Freeze the objects made so far and raise the collection thresholds (call once, after start-up)."""
    gc.collect()  # start-up garbage is freed now rather than frozen
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *_OLDER_THRESHOLDS)

