"""`voxrelay bench --compare-ref REF`: the local engine's measures on two gateways at once, alternately.

Both gateways (this tree and the other side, `bench.checkout`) run for the whole comparison. Every measure
streams one clip to one gateway, then the same clip to the other, and the order swaps from clip to clip
(A B, B A, A B, ...; capacity: level by level), so a burst of load from the rest of the machine lands on both
sides alike rather than on whichever ran second. The measures are `bench.local`'s and
`bench.long_utterances`' own functions, called with one clip at a time, so the numbers mean what they mean in
a plain `voxrelay bench`.

A measure that raises on one side (an old commit refusing a configure field, a gateway that died) is recorded
as failed for that side, and that side sits out the rest of the measure; the other side goes on.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from voxrelay.bench.checkout import Tree, checkout_dir, exported_commit, metrics_url, start_gateway, this_tree
from voxrelay.bench.common import Clip
from voxrelay.bench.local import (
    LocalResults,
    capacity_sessions,
    measure_capacity,
    measure_endpointing,
    measure_latency,
    whole_file_transcripts,
)
from voxrelay.bench.long_utterances import LongResults, measure_stop_latency
from voxrelay.bench.longset import LongClip

__all__ = ["Side", "alternate", "run_compare"]

T = TypeVar("T")
Progress = Callable[[str, int], Callable[[], None]]


def alternate(sides: Sequence[T], index: int) -> list[T]:
    """The order for the `index`-th clip or level: as given on even ones, reversed on odd ones (ABBA...)."""
    return list(sides) if index % 2 == 0 else list(reversed(sides))


@dataclass
class Side:
    """One gateway of the comparison and what failed on it, by measure."""

    label: str
    url: str
    metrics_url: str | None
    failures: dict[str, str] = field(default_factory=dict)


async def _each(sides: Sequence[Side], index: int, measure: str, run: Callable[[Side], Awaitable[None]]) -> None:
    for side in alternate(sides, index):
        if measure in side.failures:
            continue
        try:
            await run(side)
        except Exception as exc:  # anything one side's gateway does wrong is that side's result, not a crash
            side.failures[measure] = f"{type(exc).__name__}: {exc}"[:300]


def _noop() -> None:
    pass


async def _capacity(sides: Sequence[Side], clips: Sequence[Clip], levels: Sequence[int], per_session: int,
                    results: Mapping[str, LocalResults | LongResults], tick: Callable[[], None]) -> None:
    """Level by level, each side in turn: N concurrent sessions, `per_session` clips each (`bench.local`)."""
    for j, level in enumerate(levels):
        async def capacity(side: Side, level: int = level) -> None:
            rows = await measure_capacity(side.url, clips, [level], per_session, _noop, metrics_url=side.metrics_url)
            results[side.label].capacity += rows

        await _each(sides, j, "capacity", capacity)
        tick()


async def _corpus(sides: Sequence[Side], clips: Sequence[Clip], levels: Sequence[int], per_session: int,
                  results: dict[str, LocalResults], progress: Progress) -> None:
    tick = progress("compare: corpus", 2 * len(clips) + len(levels))
    for i, clip in enumerate(clips):
        async def stop(side: Side, clip: Clip = clip) -> None:
            await measure_latency(side.url, [clip], results[side.label], _noop)

        await _each(sides, i, "final after stop", stop)
        tick()
    for i, clip in enumerate(clips):
        async def endpointing(side: Side, clip: Clip = clip) -> None:
            await measure_endpointing(side.url, [clip], results[side.label], _noop)

        await _each(sides, i, "endpointing", endpointing)
        tick()
    await _capacity(sides, clips, levels, per_session, results, tick)


async def _long(sides: Sequence[Side], clips: Sequence[LongClip], levels: Sequence[int], per_session: int,
                results: dict[str, LongResults], progress: Progress) -> None:
    tick = progress("compare: long", 2 * len(clips) + len(levels))
    streamed = {label: LocalResults(endpointing_ms=r.endpointing_ms) for label, r in results.items()}
    for i, long in enumerate(clips):
        async def stop(side: Side, long: LongClip = long) -> None:
            await measure_stop_latency(side.url, [long], results[side.label], _noop)

        await _each(sides, i, "final after stop", stop)
        tick()
    for i, long in enumerate(clips):
        async def endpointing(side: Side, clip: Clip = long.clip) -> None:
            await measure_endpointing(side.url, [clip], streamed[side.label], _noop)

        await _each(sides, i, "endpointing", endpointing)
        tick()
    for label, into in results.items():
        got = streamed[label]
        into.speech_final_after_speech_end_s = got.speech_final_after_speech_end_s
        into.first_interim_after_onset_s = got.first_interim_after_onset_s
        into.references, into.streaming_transcripts = got.references, got.streaming_transcripts
    await _capacity(sides, [c.clip for c in clips], levels, per_session, results, tick)


def _finish_wer(results: LocalResults | LongResults, whole: list[str]) -> None:
    from voxrelay.bench.wer import wer

    results.whole_file_transcripts = whole[: len(results.references)]
    if results.references:
        results.streaming_wer = wer(results.references, results.streaming_transcripts)
        results.whole_file_wer = wer(results.references, results.whole_file_transcripts)
    results.capacity_sessions = capacity_sessions(results.capacity)


def run_compare(
    *,
    other_ref: str | None,
    other_dir: Path | None,
    corpus: tuple[Sequence[Clip], list[dict[str, Any]]] | None,
    long: tuple[Sequence[LongClip], list[dict[str, Any]]] | None,
    levels: Sequence[int],
    long_levels: Sequence[int],
    per_session: int,
    progress: Progress,
) -> dict[str, Any]:
    """Both sides' measures on the `corpus` and `long` clips (each with its material: which clips are
    development and which report-only), as the `compare` part of bench.json (`bench.compare` reads it).

    Raises `checkout.CompareError` if the other side cannot be exported or its gateway does not start.
    """
    from voxrelay.bench.compare import group_summary
    from voxrelay.bench.wer import wer

    mine = this_tree()
    top = max([*levels, *long_levels, 1]) + 2
    with ExitStack() as stack:
        other = checkout_dir(other_dir) if other_dir is not None else stack.enter_context(
            exported_commit(other_ref or "HEAD~1"))
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="voxrelay-compare-")))
        sides: list[Side] = []
        for tree in (other, mine):  # the other side first: an old commit that cannot start fails fast
            gateway = start_gateway(tree, ["--engine", "local", "--max-sessions", str(top)],
                                    logs / f"gateway-{len(sides)}.log")
            stack.callback(gateway.stop)
            sides.insert(0, Side(tree.label, gateway.url(), metrics_url(gateway)))
        labels = [s.label for s in sides]
        out: dict[str, Any] = {"labels": labels, "sides": [_side(mine), _side(other)]}
        local_results = {label: LocalResults() for label in labels}
        long_results = {label: LongResults() for label in labels}
        # A failure in one part spares the other: each part has its own Side objects.
        failures: dict[str, dict[str, dict[str, str]]] = {}  # part, side, measure: error
        if corpus is not None:
            asyncio.run(_corpus(sides, corpus[0], levels, per_session, local_results, progress))
            failures["corpus"] = {s.label: s.failures for s in sides}
        sides = [Side(s.label, s.url, s.metrics_url) for s in sides]
        if long is not None:
            asyncio.run(_long(sides, long[0], long_levels, per_session, long_results, progress))
            failures["long"] = {s.label: s.failures for s in sides}
    if corpus is not None:
        whole = whole_file_transcripts(corpus[0])
        for results in local_results.values():
            _finish_wer(results, whole)
        out["corpus"] = {"labels": labels, "material": corpus[1], "failures": failures["corpus"],
                         "levels": list(levels), "results": {k: r.to_dict() for k, r in local_results.items()}}
    if long is not None:
        whole = whole_file_transcripts([c.clip for c in long[0]])
        groups: dict[str, dict[str, dict[str, Any]]] = {}
        for label, done in long_results.items():
            _finish_wer(done, whole)
            groups[label] = group_summary(done.clips, done.references, done.streaming_transcripts, whole, wer)
        out["long"] = {"labels": labels, "material": long[1], "failures": failures["long"], "groups": groups,
                       "levels": list(long_levels), "results": {k: r.to_dict() for k, r in long_results.items()}}
    return out


def _side(tree: Tree) -> dict[str, Any]:
    return {"label": tree.label, "commit": tree.commit, "src": str(tree.src), "describe": tree.describe}
