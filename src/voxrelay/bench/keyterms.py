"""Keyterm benchmark: recall of names and jargon without and with keyterms, WER, and what the prompt costs.

    voxrelay bench --skip-local --skip-upload --skip-proxy --keyterms      # the set in tests/fixtures/keyterms

A real `voxrelay serve --engine local` subprocess; every clip of the keyterm set
(`refs.tsv`: file, voice, text, keyterms separated by `|`) is streamed through
`/stt-stream` at real-time pace, cut 50 ms after its last loud frame, then `stop` — once
without keyterms and once with the clip's keyterms in `configure`, the two back to back
and their order alternating clip by clip, so machine noise falls on both alike.

- *Recall*: a keyterm counts when it appears in the joined finals (resp. in any interim):
  case-insensitively, with hyphens, underscores and runs of spaces read as one space, and
  only as whole words ("Nginx" is not found in "Nginxes"). Diacritics count: "Dvorak" is
  not "Dvořák", as a glossary is there to get the spelling right.
- *WER*: the finals against the clip's text (`voxrelay.bench.wer`: Whisper's normalizer, jiwer).
- *Corpus*: the benchmark corpus (`--corpus`, default the test clips) streamed the same way
  without keyterms and with the whole set's keyterms as one glossary (terms that have nothing
  to do with the clips: what a long glossary costs in accuracy and time when it does not help).
- *Cost*: final after stop (stop to the last final) per condition, and the gateway's
  `voxrelay_engine_decode_seconds` (run time of each decode job on the inference worker),
  read from `/metrics` before and after each stream (streams run one at a time).
"""

from __future__ import annotations

import asyncio
import csv
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from voxrelay.bench.common import RATE, Clip, Gateway, percentile
from voxrelay.client import StreamResult, stream_audio, to_linear16

__all__ = [
    "KeytermClip",
    "KeytermResults",
    "Run",
    "find_keyterm_set",
    "glossary",
    "load_keyterm_set",
    "match_text",
    "recall_counts",
    "run_keyterms",
    "runaway",
    "term_found",
]

LINEAR16 = {"encoding": "linear16", "sample_rate": RATE, "channels": 1}
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015_]+")


def match_text(text: str) -> str:
    """`text` as keyterms are matched in it: NFC, case-folded, hyphens/underscores/space runs as one space."""
    return _SEPARATORS.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def term_found(term: str, text: str) -> bool:
    """Whether keyterm `term` appears in `text` as whole words (see `match_text`)."""
    needle = match_text(term)
    if not needle:
        return False
    return re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", match_text(text)) is not None


def runaway(text: str, reference: str) -> bool:
    """A transcript that ran away (a decode looping to its token cap): over twice the reference's words, plus 5.

    Words as `match_text` splits them, so that "E-T-T-T-..." counts as the many words it is.
    """
    return len(match_text(text).split()) > 2 * len(match_text(reference).split()) + 5


def recall_counts(texts: Iterable[str], terms: Sequence[str]) -> int:
    """How many of `terms` appear in any of `texts` (each transcript alone and all of them joined)."""
    texts = list(texts)
    joined = " ".join(texts)
    return sum(any(term_found(t, x) for x in [joined, *texts]) for t in terms)


@dataclass(frozen=True)
class KeytermClip:
    clip: Clip  # reference = the sentence as written
    voice: str  # e.g. "festival:cmu_us_slt_arctic_hts", "flite:rms", "corpus:piper-joe"
    keyterms: tuple[str, ...]

    @property
    def group(self) -> str:
        """The table row it counts in: corpus clips together, synthesized ones per voice."""
        return "corpus" if self.voice.startswith("corpus") else self.voice


def find_keyterm_set() -> Path:
    """The repository's keyterm set (tests/fixtures/keyterms)."""
    folder = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "keyterms"
    if not (folder / "refs.tsv").is_file():
        raise FileNotFoundError("no keyterm set found: pass --keyterms DIR (a folder with refs.tsv and WAV clips)")
    return folder


def load_keyterm_set(folder: Path, limit: int | None = None) -> list[KeytermClip]:
    """The clips of `folder/refs.tsv` (columns file, voice, text, keyterms; file relative to the folder)."""
    from voxrelay.bench.common import speech_bounds
    from voxrelay.client import load_audio

    out = []
    with open(folder / "refs.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for row in rows[:limit]:
        path = folder / row["file"]
        pcm = load_audio(str(path))
        start, end = speech_bounds(pcm)
        terms = tuple(t.strip() for t in row["keyterms"].split("|") if t.strip())
        out.append(KeytermClip(Clip(path.name, row["text"], pcm, start, end), row["voice"], terms))
    return out


def glossary(clips: Iterable[KeytermClip]) -> tuple[str, ...]:
    """Every keyterm of the set once, in order of first appearance."""
    return tuple(dict.fromkeys(t for c in clips for t in c.keyterms))


@dataclass
class Run:
    """One stream of one clip in one condition."""

    clip: str
    keyterms: bool
    finals: list[str]
    interims: list[str]
    final_after_stop_s: float | None
    decode_final_s: float  # run time of this stream's final decodes, summed, and their number
    decode_final_n: int
    decode_interim_s: float
    decode_interim_n: int


@dataclass
class KeytermResults:
    clips: list[dict[str, Any]] = field(default_factory=list)  # name, voice, group, text, keyterms
    runs: list[Run] = field(default_factory=list)  # keyterm set
    corpus: list[dict[str, str]] = field(default_factory=list)  # name, reference
    corpus_runs: list[Run] = field(default_factory=list)
    glossary: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        from voxrelay.bench.wer import wer

        info = {c["name"]: c for c in self.clips}
        groups: dict[str, dict[str, Any]] = {}
        for group in [*sorted({c["group"] for c in self.clips}), "all"]:
            names = {c["name"] for c in self.clips if group in ("all", c["group"])}
            row: dict[str, Any] = {"clips": len(names), "keyterms": sum(len(info[n]["keyterms"]) for n in names)}
            for on in (False, True):
                runs = [r for r in self.runs if r.clip in names and r.keyterms is on]
                key = "with" if on else "without"
                row[f"final_{key}"] = sum(recall_counts(r.finals, info[r.clip]["keyterms"]) for r in runs)
                row[f"interim_{key}"] = sum(recall_counts(r.interims, info[r.clip]["keyterms"]) for r in runs)
                row[f"wer_{key}"] = (
                    wer([info[r.clip]["text"] for r in runs], [" ".join(r.finals) for r in runs]) if runs else None
                )
                row[f"runaway_interims_{key}"] = _runaways(runs, {n: info[n]["text"] for n in names})
            groups[group] = row
        refs = {c["name"]: c["reference"] for c in self.corpus}
        corpus: dict[str, Any] = {"clips": len(refs), "glossary_terms": len(self.glossary)}
        for on in (False, True):
            runs = [r for r in self.corpus_runs if r.keyterms is on]
            if runs:
                key = "with" if on else "without"
                corpus[f"wer_{key}"] = wer([refs[r.clip] for r in runs], [" ".join(r.finals) for r in runs])
                corpus[f"runaway_interims_{key}"] = _runaways(runs, refs)
                corpus[f"runaway_finals_{key}"] = sum(runaway(f, refs[r.clip]) for r in runs for f in r.finals)
        return {"groups": groups, "corpus": corpus, "cost": {"keyterm_set": _cost(self.runs),
                                                              "corpus": _cost(self.corpus_runs)}}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary()}


def _runaways(runs: Sequence[Run], references: dict[str, str]) -> list[int]:
    """[runaway interims, interims] over `runs` (see `runaway`)."""
    return [sum(runaway(i, references[r.clip]) for r in runs for i in r.interims), sum(len(r.interims) for r in runs)]


def _cost(runs: Sequence[Run]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for on in (False, True):
        chosen = [r for r in runs if r.keyterms is on]
        stops = [r.final_after_stop_s for r in chosen if r.final_after_stop_s is not None]
        final_n, interim_n = sum(r.decode_final_n for r in chosen), sum(r.decode_interim_n for r in chosen)
        out["with" if on else "without"] = {
            "final_after_stop_p50_s": percentile(stops, 50),
            "final_after_stop_p95_s": percentile(stops, 95),
            "final_after_stop_n": len(stops),
            "decode_final_mean_s": sum(r.decode_final_s for r in chosen) / final_n if final_n else None,
            "decode_final_n": final_n,
            "decode_interim_mean_s": sum(r.decode_interim_s for r in chosen) / interim_n if interim_n else None,
            "decode_interim_n": interim_n,
        }
    return out


async def _decode_totals(client: httpx.AsyncClient, metrics_url: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of `voxrelay_engine_decode_seconds` per job kind, as the gateway exports them now."""
    response = await client.get(metrics_url, timeout=10)
    response.raise_for_status()
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name != "voxrelay_engine_decode_seconds":
            continue
        for sample in family.samples:
            kind = sample.labels.get("kind", "")
            if sample.name.endswith("_sum"):
                totals.setdefault(kind, [0.0, 0.0])[0] = sample.value
            elif sample.name.endswith("_count"):
                totals.setdefault(kind, [0.0, 0.0])[1] = sample.value
    return {k: (v[0], v[1]) for k, v in totals.items()}


def _final_after_stop(result: StreamResult) -> float | None:
    if result.stop_sent_at is None:
        return None
    finals = [t for m, t in zip(result.messages, result.times, strict=True) if m["type"] == "final_transcript"]
    return finals[-1] - result.stop_sent_at if finals and finals[-1] >= result.stop_sent_at else None


async def stream_clip(url: str, metrics_url: str, clip: Clip, keyterms: Sequence[str]) -> Run:
    """Stream `clip` (cut after its last word) in real time, with `keyterms` if any, then stop."""
    configure: dict[str, Any] = {"audio_format": LINEAR16, "endpointing": 300}
    if keyterms:
        configure["keyterms"] = list(keyterms)
    async with httpx.AsyncClient() as client:
        before = await _decode_totals(client, metrics_url)
        result = await stream_audio(url, to_linear16(clip.trimmed()), configure=configure, chunk_bytes=1600)
        after = await _decode_totals(client, metrics_url)
    errors = result.of_type("error")
    if errors:
        raise RuntimeError(f"{clip.name}: {errors[0]}")

    def delta(kind: str) -> tuple[float, int]:
        s1, n1 = after.get(kind, (0.0, 0.0))
        s0, n0 = before.get(kind, (0.0, 0.0))
        return s1 - s0, int(n1 - n0)

    final_s, final_n = delta("final")
    interim_s, interim_n = delta("interim")
    return Run(
        clip=clip.name,
        keyterms=bool(keyterms),
        finals=[t for t in result.finals if t],
        interims=[m["transcript"] for m in result.of_type("interim_transcript")],
        final_after_stop_s=_final_after_stop(result),
        decode_final_s=final_s,
        decode_final_n=final_n,
        decode_interim_s=interim_s,
        decode_interim_n=interim_n,
    )


async def _pairs(
    url: str, metrics_url: str, items: Sequence[tuple[Clip, tuple[str, ...]]], tick: Callable[[], None]
) -> list[Run]:
    """Each clip without and with its keyterms, back to back; which goes first alternates clip by clip."""
    runs = []
    for i, (clip, terms) in enumerate(items):
        for on in ((False, True) if i % 2 == 0 else (True, False)):
            runs.append(await stream_clip(url, metrics_url, clip, terms if on else ()))
        tick()
    return runs


def run_keyterms(
    keyterm_clips: Sequence[KeytermClip],
    corpus: Sequence[Clip],
    *,
    progress: Callable[[str, int], Callable[[], None]],
    gateway_args: Sequence[str] = (),
) -> KeytermResults:
    """The keyterm set, then the corpus with the set's glossary, on one local-engine gateway."""
    results = KeytermResults(glossary=list(glossary(keyterm_clips)))
    for k in keyterm_clips:
        results.clips.append(
            {"name": k.clip.name, "voice": k.voice, "group": k.group, "text": k.clip.reference,
             "keyterms": list(k.keyterms)}
        )
    results.corpus = [{"name": c.name, "reference": c.reference} for c in corpus]
    with Gateway("--engine", "local", *gateway_args) as gateway:
        url, metrics = gateway.url(), f"http://127.0.0.1:{gateway.port}/metrics"
        items = [(k.clip, k.keyterms) for k in keyterm_clips]
        results.runs = asyncio.run(_pairs(url, metrics, items, progress("keyterm set", len(items))))
        if corpus:
            terms = tuple(results.glossary)
            results.corpus_runs = asyncio.run(
                _pairs(url, metrics, [(c, terms) for c in corpus], progress("corpus + glossary", len(corpus)))
            )
    return results
