"""`voxrelay bench`: latency, accuracy and capacity of the local engine and the Deepgram proxy path.

    voxrelay bench                 # full run (about 15 minutes on 2 cores)
    voxrelay bench --quick         # a smoke run of every measurement (seconds)
    voxrelay bench --skip-local --skip-upload --skip-proxy --keyterms   # keyterm recall and cost (issue 13)
    voxrelay bench --skip-local --skip-upload --skip-proxy --long       # long utterances (issue 16)
    voxrelay bench --skip-upload --skip-proxy --long --compare-ref HEAD~1   # this tree and HEAD~1, alternately

Writes bench.json, bench.md and plots (PNG; the long set's latency against length as SVG) to --out
(default bench-results/).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxrelay.bench.longset import LongClip

__all__ = ["run_bench"]


def _progress(enabled: bool) -> Callable[[str, int], Callable[[], None]]:
    def start(label: str, total: int) -> Callable[[], None]:
        if not enabled:
            return lambda: None
        from tqdm import tqdm

        bar = tqdm(total=total, desc=label, unit="step", file=sys.stderr, leave=True)

        def tick() -> None:
            bar.update(1)
            if bar.n >= bar.total:
                bar.close()

        return tick

    return start


def run_bench(
    *,
    out: Path,
    quick: bool = False,
    corpus: Path | None = None,
    clips: int | None = None,
    levels: Sequence[int] | None = None,
    proxy_levels: Sequence[int] | None = None,
    proxy_seconds: float | None = None,
    proxy_workers: int | None = None,
    skip_local: bool = False,
    skip_proxy: bool = False,
    skip_upload: bool = False,
    upload_sessions: int | None = None,
    upload_seconds: float | None = None,
    keyterms: bool = False,
    keyterm_set: Path | None = None,
    local_glossary: bool = False,
    long: bool = False,
    long_set: Path | None = None,
    long_levels: Sequence[int] | None = None,
    compare_ref: str | None = None,
    compare_dir: Path | None = None,
    progress: bool = True,
    argv: Sequence[str] = (),
) -> Path:
    from voxrelay.bench.common import find_corpus, load_clips
    from voxrelay.bench.report import write_report

    """`keyterms`: measure keyterm recall on `keyterm_set` (refs.tsv + WAVs; None = tests/fixtures/keyterms);
    `local_glossary`: the local part sends that set's keyterms (all of them) with every session;
    `long`: measure the long-utterance set built from the corpus (`bench.longset`), plus the report-only clips
    of `long_set` (a folder with refs.tsv) if given; capacity on long speech at `long_levels`;
    `compare_ref` (a git commit) or `compare_dir` (another checkout): the local and long parts measure this tree
    and that code alternately in one run (`bench.interleaved`) and report them side by side (`bench.compare`);
    raises `bench.checkout.CompareError` if the other side cannot run."""
    data: dict[str, Any] = {"mode": "quick" if quick else "full", "command": "voxrelay bench " + shlex.join(argv)}
    tick = _progress(progress)
    kclips = None
    if keyterms or local_glossary:
        from voxrelay.bench.keyterms import find_keyterm_set, load_keyterm_set

        kclips = load_keyterm_set(keyterm_set or find_keyterm_set(), limit=2 if quick else None)
    if compare_ref is not None or compare_dir is not None:
        data["compare"] = _run_compare(
            compare_ref, compare_dir, None if skip_local else (corpus, clips), long or long_set is not None,
            long_set, quick, levels, long_levels, tick,
        )
    elif not skip_local:
        from voxrelay.bench.local import run_local

        chosen = load_clips(corpus or find_corpus(), limit=clips or (2 if quick else None))
        levels = levels if levels is not None else ([2] if quick else [1, 2, 4, 8, 12, 14, 16])
        terms: tuple[str, ...] = ()
        if local_glossary and kclips is not None:
            from voxrelay.bench.keyterms import glossary

            terms = glossary(kclips)
        data["local"] = run_local(
            chosen, levels=levels, per_session=1 if quick else 3, progress=tick, keyterms=terms
        ).to_dict()
    if (long or long_set is not None) and "compare" not in data:
        data["long"] = _run_long(quick, long_set, long_levels, tick)
    if not skip_upload:
        from voxrelay.bench.upload import run_upload

        pool = load_clips(corpus or find_corpus(), limit=clips)
        sessions = upload_sessions or (2 if quick else 3)
        seconds = upload_seconds or (30.0 if quick else 300.0)
        data["upload"] = run_upload(
            pool, sessions=sessions, rounds=2 if quick else 6, upload_s=seconds, progress=tick
        ).to_dict()
    if keyterms and kclips is not None:
        from voxrelay.bench.keyterms import run_keyterms

        pool = load_clips(corpus or find_corpus(), limit=clips or (2 if quick else None))
        data["keyterms"] = run_keyterms(kclips, pool, progress=tick).to_dict()
    if not skip_proxy:
        from voxrelay.bench.proxy import run_proxy

        plevels = proxy_levels if proxy_levels is not None else ([1, 5] if quick else [1, 100, 1000])
        seconds = proxy_seconds if proxy_seconds is not None else (3.0 if quick else 12.0)
        data["proxy"] = run_proxy(plevels, seconds, tick, workers=proxy_workers).to_dict()
    return write_report(out, data)


def _run_compare(
    ref: str | None,
    folder: Path | None,
    corpus: tuple[Path | None, int | None] | None,
    long: bool,
    long_set: Path | None,
    quick: bool,
    levels: Sequence[int] | None,
    long_levels: Sequence[int] | None,
    tick: Callable[[str, int], Callable[[], None]],
) -> dict[str, Any]:
    """Which clips are development material (the shipped corpus and the long set built from it) and which are
    report-only (`--corpus DIR` elsewhere, `--long-set DIR`), then both sides' measures on them."""
    from voxrelay.bench.common import find_corpus, load_clips
    from voxrelay.bench.interleaved import run_compare

    shipped = find_corpus()
    chosen = None
    if corpus is not None:
        folder_in, limit = corpus
        source = (folder_in or shipped).resolve()
        clips = load_clips(source, limit=limit or (2 if quick else None))
        kind = "development" if source == shipped.resolve() else "report-only"
        chosen = (clips, [{"clips": len(clips), "source": f"from `{source}`", "kind": kind}])
    longs = _long_clips(quick, long_set) if long else None
    return run_compare(
        other_ref=ref if folder is None else None, other_dir=folder, corpus=chosen, long=longs,
        levels=levels if levels is not None else ([2] if quick else [8, 14]),
        long_levels=long_levels if long_levels is not None else ([] if quick else [8]),
        per_session=1 if quick else 2, progress=tick,
    )


def _long_clips(quick: bool, long_set: Path | None) -> tuple[list[LongClip], list[dict[str, Any]]]:
    """The long-utterance clips: the set built from the shipped corpus (development material), then the
    report-only clips of `long_set`; and what each part is, for the report."""
    from voxrelay.bench.common import find_corpus
    from voxrelay.bench.longset import build_long_set, load_report_set

    shipped = find_corpus()
    clips = build_long_set(shipped, limit=2 if quick else None)
    material = [{"clips": len(clips), "source": f"built from `{shipped}` (`bench.longset`)", "kind": "development"}]
    if long_set is not None:
        extra = load_report_set(long_set, limit=2 if quick else None)
        material.append({"clips": len(extra), "source": f"from `{long_set.resolve()}`", "kind": "report-only"})
        clips += extra
    return clips, material


def _run_long(
    quick: bool,
    long_set: Path | None,
    levels: Sequence[int] | None,
    tick: Callable[[str, int], Callable[[], None]],
) -> dict[str, Any]:
    from voxrelay.bench.long_utterances import run_long

    clips, _ = _long_clips(quick, long_set)
    levels = levels if levels is not None else ([2] if quick else [4, 8, 12, 16])
    return run_long(clips, levels=levels, per_session=1 if quick else 2, progress=tick).to_dict()
