"""One `/metrics` exposition for a box of workers: each worker's series labelled `worker="<index>"`.

Pure (text in, text out), so every case is a synchronous test. `box_exposition` is the whole job:
each worker's Prometheus text (or None for a worker that did not answer) has the `worker` label
added to every sample line, families of the same name become one (one HELP/TYPE, then the samples
of each worker in index order), and `voxrelay_worker_up` says which workers' series it holds.

It works on the text's lines rather than parsing it into families and rendering them again:
the text format is line-based (one sample per line, newlines in label values escaped), and a
sample's name ends at its first `{` or space, which is where the label goes. For two busy workers
that takes 1.0 ms (median; 1.3 ms p99) where prometheus_client's parser and `generate_latest` took
12.7 ms (22.9 ms p99) on the event loop that relays audio (scripts/metrics_merge_cost.py, AMD EPYC).
The tests check the result against prometheus_client's parser.

Why not prometheus_client's multiprocess mode: it aggregates from files the instrumented values
write, which the callback gauges (`voxrelay_active_sessions` reads the live session set at scrape
time) and the per-process collectors (`process_*`, `python_*`) never do. Labelling instead of
summing also keeps counters honest across a worker's restart: its series reset on their own and
PromQL's `rate`/`increase` handle that per series, where a pre-summed counter would just drop.

A sample that already has a `worker` label keeps it as `exported_worker` (Prometheus' own rule
for a target label colliding with an exposed one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["UP_METRIC", "WORKER_LABEL", "box_exposition"]

WORKER_LABEL = "worker"
UP_METRIC = "voxrelay_worker_up"
_UP_HELP = ("1 when this scrape holds the worker's series; 0 when the worker did not answer the worker that "
            "served the scrape in time (restarting, stuck, or starting): its series are absent from this scrape.")

# One `name="value"` pair of a sample's labels (value escapes: \\, \", \n), and the comma after it.
_LABEL_PAIR = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*")\s*,?')


def box_exposition(texts: Mapping[int, bytes | None]) -> bytes:
    """The box's exposition from each worker index's text (None: the worker did not answer).

    A text that is not the Prometheus text format (a sample before any HELP or TYPE line, a line
    that does not decode) counts as not answered. Workers come out in index order, whatever order
    they answered in, so successive scrapes list the series in the same order.
    """
    merged: dict[str, _Family] = {}
    answered: set[int] = set()
    for index in sorted(texts):
        families = _worker_families(index, texts[index])
        if families is None:
            continue
        answered.add(index)
        for family in families:
            into = merged.setdefault(family.name, _Family(family.name, family.header, family.type))
            if into.type == family.type:  # else workers of two versions: Prometheus refuses a mixed family
                into.samples.extend(family.samples)
    up = _Family(UP_METRIC, [f"# HELP {UP_METRIC} {_UP_HELP}", f"# TYPE {UP_METRIC} gauge"], "gauge")
    up.samples = [f'{UP_METRIC}{{{WORKER_LABEL}="{i}"}} {1.0 if i in answered else 0.0}' for i in sorted(texts)]
    lines = [line for family in (*merged.values(), up) for line in (*family.header, *family.samples)]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class _Family:
    name: str
    header: list[str]  # its HELP and TYPE lines as the first worker wrote them
    type: str = "unknown"
    samples: list[str] = field(default_factory=list)


def _worker_families(index: int, text: bytes | None) -> list[_Family] | None:
    """The families of worker `index`'s text with its label on every sample; None if it is not the format."""
    if text is None:
        return None
    label = f'{WORKER_LABEL}="{index}"'
    try:
        families = _families(text.decode())
        for family in families:
            family.samples = [_labelled(line, label) for line in family.samples]
    except (ValueError, UnicodeDecodeError):
        return None
    return families


def _families(text: str) -> list[_Family]:
    """The families of one worker's text, in its order; raises ValueError for a sample before any family."""
    families: list[_Family] = []
    current: _Family | None = None
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            keyword = line[2:6]
            name, _, rest = line[7:].partition(" ")
            if current is None or current.name != name:
                current = _Family(name, [])
                families.append(current)
            current.header.append(line)
            if keyword == "TYPE":
                current.type = rest.strip()
        elif line.startswith("#") or not line.strip():
            continue  # a comment, or a blank line
        elif current is None:
            raise ValueError(f"a sample before any HELP or TYPE line: {line[:80]!r}")
        else:
            current.samples.append(line)
    return families


def _labelled(line: str, label: str) -> str:
    """A sample line with `label` (`worker="i"`) first among its labels."""
    space = line.find(" ")
    brace = line.find("{", 0, space if space >= 0 else len(line))
    if brace < 0:
        if space < 0:
            raise ValueError(f"a sample without a value: {line[:80]!r}")
        return f"{line[:space]}{{{label}}}{line[space:]}"
    rest = line[brace + 1:]
    if rest.lstrip().startswith("}"):
        return f"{line[:brace]}{{{label}{rest.lstrip()}"
    if f"{WORKER_LABEL}=" in rest or f"{WORKER_LABEL} " in rest:  # maybe a label of that name already
        rest = _worker_exported(rest)
    return f"{line[:brace]}{{{label},{rest}"


def _worker_exported(rest: str) -> str:
    """The labels after a sample's `{` with a `worker` label renamed `exported_worker`."""
    pairs, position = [], 0
    while (pair := _LABEL_PAIR.match(rest, position)) is not None:
        name = "exported_" + WORKER_LABEL if pair.group(1) == WORKER_LABEL else pair.group(1)
        pairs.append(f"{name}={pair.group(2)}")
        position = pair.end()
    closing = rest[position:].lstrip()
    if not closing.startswith("}"):
        raise ValueError(f"labels not in the text format: {rest[:80]!r}")
    return ",".join(pairs) + closing
