"""The keyterm benchmark: how a keyterm is found in a transcript, the set on disk, the summary and the report."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from voxrelay.bench.common import Clip
from voxrelay.bench.keyterms import (
    KeytermClip,
    KeytermResults,
    Run,
    find_keyterm_set,
    glossary,
    load_keyterm_set,
    match_text,
    recall_counts,
    runaway,
    term_found,
)
from voxrelay.bench.report import write_report

SET = Path(__file__).resolve().parents[1] / "fixtures" / "keyterms"


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("Kubernetes", "deploy it to kubernetes."),
        ("PyTorch", "trained in PYTORCH, then"),
        ("scikit-learn", "cluster them with scikit learn"),
        ("Argo CD", "let Argo-CD sync it"),
        ("Argo CD", "let argo   cd sync it"),
        ("llama.cpp", "quantize with llama.cpp."),
        ("Ciarán", "for Ciarán's talk"),
        ("SOC 2", "signed the SOC-2 report"),
        ("Nguyen Van An", "Nguyen Van An signed"),
    ],
)
def test_a_keyterm_is_found_whatever_its_case_hyphens_or_spacing(term: str, text: str) -> None:
    assert term_found(term, text)


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("Nginx", "Put Engine X in front"),
        ("Helm", "Install the chart with Helmet"),  # whole words only
        ("Zig", "the zigzag"),
        ("Dvořák", "a symphony by Dvorak"),  # the spelling is the point of a glossary
        ("PostgreSQL", "post-gress UL"),
        ("Kenji Watanabe", "Kenji Y. And Abe"),
        ("", "anything"),
    ],
)
def test_a_keyterm_is_not_found_in_a_near_miss(term: str, text: str) -> None:
    assert not term_found(term, text)


def test_match_text_folds_case_and_reads_hyphens_and_space_runs_as_one_space() -> None:
    assert match_text("  Fine-Tuned\u2013AntiBERTa \t on_GPU ") == "fine tuned antiberta on gpu"
    assert match_text("Dvo\u0072\u030cák") == match_text("Dvořák")  # decomposed and composed ř alike


def test_a_transcript_runs_away_past_twice_the_reference_plus_five_words() -> None:
    assert not runaway("please call stella " * 3 + "please call", "Please call Stella.")  # 11 words = 2 * 3 + 5
    assert runaway("please call stella " * 4, "Please call Stella.")  # 12
    assert not runaway("", "anything at all")
    assert runaway("My phone number is 555. 448, E-T-T-T-T-T-T-T-T-T-T-T-T-T-T-T", "My phone number is five")


def test_recall_counts_each_keyterm_once_across_transcripts_even_split_between_two() -> None:
    terms = ("Olivia Brown", "Ahmed Hassan", "Boston")
    assert recall_counts(["for Olivia", "Brown and Ahmed Hassan."], terms) == 2
    assert recall_counts(["Ahmed Hassan", "ahmed hassan"], terms) == 1
    assert recall_counts([], terms) == 0


def test_the_committed_set_is_what_its_readme_says() -> None:
    clips = load_keyterm_set(find_keyterm_set())
    assert find_keyterm_set() == SET
    assert len(clips) == 27 and sum(len(c.keyterms) for c in clips) == 46
    assert {c.group for c in clips} == {
        "corpus", "festival:cmu_us_slt_arctic_hts", "flite:rms", "flite:slt", "flite:awb",
    }
    assert len(glossary(clips)) == len({t for c in clips for t in c.keyterms})
    wavs = sorted(SET.glob("*.wav"))
    assert len(wavs) == 25 and sum(w.stat().st_size for w in wavs) < 4_000_000
    for path in wavs:
        with wave.open(str(path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), path
    # refs.tsv holds exactly the candidates whose verdict is "kept", each with at least one keyterm missed.
    with open(SET / "candidates.tsv", newline="") as f:
        candidates = list(csv.DictReader(f, delimiter="\t"))
    kept = [row for row in candidates if row["kept"] == "kept"]
    assert [row["file"] for row in kept] == [f"../audio/{c.clip.name}" if c.group == "corpus" else c.clip.name
                                             for c in clips]
    assert all(int(row["found_without"]) < len(row["keyterms"].split("|")) for row in kept)
    assert all(int(row["found_without"]) == len(row["keyterms"].split("|"))
               for row in candidates if row["kept"] == "all found")


def _clip(name: str, voice: str, text: str, terms: tuple[str, ...]) -> KeytermClip:
    return KeytermClip(Clip(name, text, np.zeros(1600, dtype=np.float32), 0.0, 0.1), voice, terms)


def _run(clip: str, on: bool, finals: list[str], interims: list[str], stop: float | None) -> Run:
    return Run(clip, on, finals, interims, stop, decode_final_s=0.2 if on else 0.1, decode_final_n=1,
               decode_interim_s=0.3, decode_interim_n=3)


def test_the_summary_counts_recall_and_wer_per_voice_and_the_cost_per_condition(tmp_path: Path) -> None:
    clips = [
        _clip("a.wav", "flite:rms", "Ask Siobhan", ("Siobhan",)),
        _clip("b.wav", "corpus:piper-joe", "Call Olivia Brown now", ("Olivia Brown", "now")),
    ]
    results = KeytermResults(glossary=list(glossary(clips)))
    results.clips = [{"name": c.clip.name, "voice": c.voice, "group": c.group, "text": c.clip.reference,
                      "keyterms": list(c.keyterms)} for c in clips]
    results.runs = [
        _run("a.wav", False, ["Ask Shivan."], ["Ask"], 0.2),
        _run("a.wav", True, ["Ask Siobhan."], ["Ask Siobhan"], 0.3),
        _run("b.wav", False, ["Call all of you", "Brown now."], [], None),
        _run("b.wav", True, ["Call Olivia Brown now."], ["Call Olivia"], 0.4),
    ]
    summary = results.summary()
    groups = summary["groups"]
    assert groups["flite:rms"] == {"clips": 1, "keyterms": 1, "final_without": 0, "interim_without": 0,
                                   "wer_without": 0.5, "final_with": 1, "interim_with": 1, "wer_with": 0.0,
                                   "runaway_interims_without": [0, 1], "runaway_interims_with": [0, 1]}
    assert (groups["corpus"]["final_without"], groups["corpus"]["final_with"]) == (1, 2)
    assert (groups["all"]["clips"], groups["all"]["keyterms"]) == (2, 3)
    assert (groups["all"]["interim_without"], groups["all"]["interim_with"]) == (0, 1)
    cost = summary["cost"]["keyterm_set"]
    assert cost["without"]["final_after_stop_n"] == 1  # the stream whose last final came before its stop
    assert cost["with"]["final_after_stop_p50_s"] == pytest.approx(0.35)
    assert cost["with"]["decode_final_mean_s"] == pytest.approx(0.2)
    assert cost["without"]["decode_interim_mean_s"] == pytest.approx(0.1)
    assert summary["corpus"] == {"clips": 0, "glossary_terms": 3}

    report = write_report(tmp_path, {"mode": "full", "command": "voxrelay bench", "keyterms": results.to_dict()})
    text = report.read_text()
    assert "| flite:rms | 1 | 1 | 0/1 → 1/1 | 0/1 → 1/1 | 50.0 % → 0.0 % | 0/1 → 0/1 |" in text, text


def test_bench_keyterms_quick_streams_two_clips_without_and_with_keyterms(tmp_path: Path) -> None:
    """A smoke run through a real gateway: 2 clips of the set and 2 corpus clips, each twice."""
    done = subprocess.run(
        [sys.executable, "-m", "voxrelay.cli", "bench", "--quick", "--skip-local", "--skip-upload", "--skip-proxy",
         "--keyterms", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())["keyterms"]
    assert len(data["runs"]) == 4 and len(data["corpus_runs"]) == 4
    assert sorted(r["keyterms"] for r in data["runs"]) == [False, False, True, True]
    summary = data["summary"]
    # The first two clips of the set are s07 and s08, whose names tiny.en misses without keyterms.
    assert summary["groups"]["all"]["keyterms"] == 4
    assert summary["groups"]["all"]["final_with"] > summary["groups"]["all"]["final_without"], summary
    for part in ("keyterm_set", "corpus"):
        for key in ("without", "with"):
            assert summary["cost"][part][key]["decode_final_n"] >= 1, summary["cost"]
    assert "## Keyterms" in (tmp_path / "bench.md").read_text()
