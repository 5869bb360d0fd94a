"""`voxrelay bench --compare-ref`: two real gateways measured alternately, and what happens when one cannot run."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from voxrelay.bench.checkout import CompareError, checkout_dir, exported_commit, this_tree
from voxrelay.bench.common import find_corpus, load_clips, process_tree
from voxrelay.bench.compare import corpus_rows, long_rows
from voxrelay.bench.interleaved import Side, _each, alternate, run_compare
from voxrelay.bench.longset import load_report_set

SHORT = "s01_command_lights.wav"  # 1.3 s of speech: the run stays short


def no_progress(label: str, total: int) -> Callable[[], None]:
    return lambda: None


def test_sides_alternate_clip_by_clip() -> None:
    assert [alternate("AB", i) for i in range(4)] == [["A", "B"], ["B", "A"], ["A", "B"], ["B", "A"]]


async def test_a_side_that_fails_a_measure_sits_out_the_rest_of_it_and_the_other_goes_on() -> None:
    sides = [Side("this tree", "ws://a", None), Side("old", "ws://b", None)]
    ran: list[str] = []

    async def run(side: Side) -> None:
        ran.append(side.label)
        if side.label == "old":
            raise ConnectionError("unknown configure field")

    for i in range(3):
        await _each(sides, i, "endpointing", run)
    assert ran == ["this tree", "old", "this tree", "this tree"]
    assert sides[1].failures == {"endpointing": "ConnectionError: unknown configure field"}
    await _each(sides, 0, "capacity", run)  # another measure: the failed side is tried again
    assert ran[-2:] == ["this tree", "old"]


def test_a_commit_is_exported_for_the_run_and_removed_after_it() -> None:
    with exported_commit("HEAD") as tree:
        assert (tree.src / "voxrelay" / "__init__.py").is_file()
        assert tree.label == tree.commit and len(tree.label) >= 7
        assert tree.src.resolve() != this_tree().src
    assert not tree.src.exists()
    with pytest.raises(CompareError, match="no-such-ref: not a commit"), exported_commit("no-such-ref"):
        pass


def test_a_gateway_that_does_not_start_is_a_clear_error_and_no_gateway_is_left_running(tmp_path: Path) -> None:
    # An "old checkout" whose serve refuses a flag, as a gateway from before that flag would.
    package = tmp_path / "old" / "src" / "voxrelay"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text(
        "import sys\nprint('voxrelay: error: unrecognized arguments: --max-sessions 3', file=sys.stderr)\n"
        "sys.exit(2)\n"
    )
    assert checkout_dir(tmp_path / "old").src == package.parent
    with pytest.raises(CompareError) as caught:
        run_compare(other_ref=None, other_dir=tmp_path / "old", corpus=None, long=None, levels=[1], long_levels=[],
                    per_session=1, progress=no_progress)
    message = str(caught.value)
    assert "old's gateway did not start" in message and "unrecognized arguments: --max-sessions 3" in message
    assert process_tree(os.getpid()) == [os.getpid()]
    with pytest.raises(CompareError, match="no voxrelay package"):
        checkout_dir(tmp_path)


def test_the_cli_says_why_a_comparison_cannot_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voxrelay.cli", "bench", "--skip-local", "--skip-upload", "--skip-proxy",
         "--compare-ref", "no-such-ref"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("voxrelay bench: --compare-ref no-such-ref: not a commit") and "Traceback" not in done.stderr


def test_this_tree_against_head_on_a_short_clip_through_two_real_gateways(tmp_path: Path) -> None:
    corpus = find_corpus()
    clip = next(c for c in load_clips(corpus) if c.name == SHORT)
    # The same recording as a report-only "long" clip (a folder with refs.tsv), so the long part runs too.
    report_only = tmp_path / "report-only"
    report_only.mkdir()
    shutil.copy(next(corpus.rglob(SHORT)), report_only / SHORT)
    with open(report_only / "refs.tsv", "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerows([["file", "reference_transcript", "subset"], [SHORT, clip.reference, "real"]])
    material = [{"clips": 1, "source": "test", "kind": "report-only"}]
    compare = run_compare(
        other_ref="HEAD", other_dir=None, corpus=([clip], material), long=(load_report_set(report_only), material),
        # No capacity level: it is `bench.local.measure_capacity` (the quick bench runs it), and here it would only
        # add two more real-time streams to a test that should stay well under a minute on a busy machine.
        levels=[], long_levels=[], per_session=1, progress=no_progress,
    )
    this, head = compare["labels"]
    assert this == "this tree" and head == compare["sides"][1]["commit"]
    assert compare["sides"][0]["src"] == str(this_tree().src) and "voxrelay-" in compare["sides"][1]["src"]
    corpus_part, long_part = compare["corpus"], compare["long"]
    assert corpus_part["failures"] == {this: {}, head: {}} and long_part["failures"] == {this: {}, head: {}}
    for label in (this, head):
        s = corpus_part["results"][label]["summary"]
        # Every measure has a number from a real stream on each side.
        assert s["final_after_stop_s"]["n"] + s["final_before_stop"] == 1
        # An interim and a speech_final before the stop depend on the machine's load (a busy decoder may answer
        # only after the stop, 1.5 s after the speech): at most one each, and the transcript below in any case.
        assert s["first_interim_after_onset_s"]["n"] <= 1 and s["speech_final_after_speech_end_s"]["n"] <= 1
        assert s["streaming_wer"] is not None and s["streaming_wer"] < 0.5
        assert s["capacity"] == [] and s["capacity_sessions"] == 0
        assert long_part["groups"][label]["report-only"]["streaming_wer"] is not None
    rows = {row.measure: row for row in corpus_rows(corpus_part)}
    assert rows["streaming WER"].cells()[2] != "n/a" and "failed" not in rows["streaming WER"].cells()
    assert any(row.measure.startswith("... report-only") for row in long_rows(long_part))
