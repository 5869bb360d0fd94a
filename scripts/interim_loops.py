"""Runaway interims: the interim windows of every clip, decoded the way a live stream decodes them (issue 16).

    PYTHONPATH=src .venv/bin/python scripts/interim_loops.py [--corpus DIR] [--glossary] [--keyterm-set] \
        [--config now: --config pad1:window_pad_s=1.0] [--show] [--first 0.15]

Deterministic and without a clock: each clip (cut 50 ms after its last word) goes through the engine's
own VAD, `Segmenter` and `InterimPacer` in 50 ms frames, and every time the pacer asks for an interim the
segment's audio is taken as that interim's window (as if every decode answered at once). Each window is then
decoded as `LocalStream` decodes interims (greedy, window padding 2 s, the stream's keyterms as earlier text),
once per `--config` (`WhisperDecoder.decode` keyword arguments, e.g. `window_pad_s=1.0`); to compare
checkouts, run it once with each on PYTHONPATH.
`--glossary`: every corpus clip gets all 46 keyterms of tests/fixtures/keyterms (issue 13's worst case);
`--keyterm-set`: the keyterm set's clips too, each with its own keyterms; `--dictation`: the clips of
tests/fixtures/dictation too, primed with the dictation commands as a dictation stream primes them.

A window's interim counts as **runaway** when it has more words than 5 words per second of the window's
speech allows (+2), or when it ends in one unit (of any length) repeated at least 4 times; `--show`
prints them. Also printed: interims with text, mean decode time, and how many interims contain one of their
clip's keyterms, and how many start with their clip's first word (the first window of a clip is the one
that matters). `--first S`: only each segment's first window, asked for after S s of speech (the pacer's
`first_s`), to compare e.g. window paddings for the first interim (`--config p1:window_pad_s=1.0`).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxrelay.bench.common import RATE, Clip, find_corpus, load_clips, speech_bounds
from voxrelay.bench.keyterms import find_keyterm_set, glossary, load_keyterm_set, match_text, term_found
from voxrelay.bench.offline import linear16_round_trip
from voxrelay.client import load_audio
from voxrelay.engines.local.interims import InterimPacer
from voxrelay.engines.local.prompting import keyterm_text
from voxrelay.engines.local.segmenter import Segmenter, SegmenterConfig
from voxrelay.engines.local.vad import SileroVad, VadState
from voxrelay.engines.local.whisper import WhisperDecoder
from voxrelay.protocol.dictation import GLOSSARY

_CHUNK = RATE // 20
_WORDS_PER_S = 5.0  # faster than anyone dictates
_MIN_COPIES = 4


@dataclass(frozen=True)
class Window:
    clip: str
    audio: np.ndarray
    speech_s: float  # the segment's speech so far
    start: int  # the window's first sample in the clip
    keyterms: tuple[str, ...]
    first: bool = False  # a segment's first interim


def interim_windows(
    vad: SileroVad, clip: Clip, keyterms: tuple[str, ...], first_s: float | None = None
) -> list[Window]:
    """The windows a live stream's interims decode, if every decode answered at once (`first_s`: the pacer's)."""
    audio = linear16_round_trip(clip.trimmed())
    segmenter = Segmenter(SegmenterConfig(endpointing_ms=300))
    pacer = InterimPacer(0.5) if first_s is None else InterimPacer(0.5, first_s=first_s)
    state = VadState()
    shown = False
    windows: list[Window] = []
    for offset in range(0, len(audio), _CHUNK):
        frame = audio[offset : offset + _CHUNK]
        segmenter.add_audio(frame)
        if segmenter.add_probabilities(vad.probabilities(state, frame)) is not None:
            pacer.new_segment()
            shown = False
        if pacer.due(
            speech_start=segmenter.speech_start_time,
            speech_end=segmenter.last_speech_end,
            hearing_speech=segmenter.hearing_speech,
            shown_text=shown,
        ):
            pacer.asked(segmenter.last_speech_end)
            pacer.answered()
            first = not shown
            shown = True  # the pacer's interval, not its retry: what a stream that shows text does
            speech = segmenter.last_speech_end - segmenter.speech_start_time
            window, origin = segmenter.segment_audio()
            windows.append(Window(clip.name, window, speech, round(origin * RATE), keyterms, first))
    return windows


def dictation_clips() -> list[Clip]:
    folder = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "dictation"
    with open(folder / "refs.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    clips = []
    for row in rows:
        pcm = load_audio(str(folder / row["file"]))
        clips.append(Clip(row["file"], row["spoken"], pcm, *speech_bounds(pcm)))
    return clips


def periodic_copies(words: list[str]) -> int:
    """How many times the longest-covering unit repeats at the end of `words` (1: no repetition)."""
    best = 1
    for period in range(1, len(words) // 2 + 1):
        unit = words[-period:]
        copies = 1
        while words[-(copies + 1) * period : len(words) - copies * period] == unit:
            copies += 1
        best = max(best, copies)
    return best


def runaway(text: str, speech_s: float) -> bool:
    words = match_text(text).replace(",", " ").replace(".", " ").split()
    return len(words) > _WORDS_PER_S * speech_s + 2 or periodic_copies(words) >= _MIN_COPIES


def parse_config(text: str) -> tuple[str, dict[str, object]]:
    name, _, rest = text.partition(":")
    return name, {k: json.loads(v) for k, v in (item.split("=", 1) for item in rest.split(",") if item)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus")
    parser.add_argument("--glossary", action="store_true")
    parser.add_argument("--keyterm-set", action="store_true")
    parser.add_argument("--dictation", action="store_true")
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--show", action="store_true")
    parser.add_argument("--first", type=float, help="only each segment's first window, after this much speech")
    args = parser.parse_args()
    configs = [parse_config(c) for c in args.config] or [("now", {})]
    vad = SileroVad()
    items: list[tuple[Clip, tuple[str, ...]]] = []
    terms: tuple[str, ...] = ()
    keyterm_clips = load_keyterm_set(find_keyterm_set()) if (args.glossary or args.keyterm_set) else []
    if args.glossary:
        terms = glossary(keyterm_clips)
    items += [(c, terms) for c in load_clips(Path(args.corpus) if args.corpus else find_corpus())]
    if args.keyterm_set:
        items += [(k.clip, k.keyterms) for k in keyterm_clips]
    if args.dictation:
        items += [(clip, GLOSSARY) for clip in dictation_clips()]
    windows = [w for clip, kt in items for w in interim_windows(vad, clip, kt, args.first)]
    if args.first is not None:
        windows = [w for w in windows if w.first]
    print(f"{len(items)} clips, {len(windows)} interim windows, glossary {len(terms)} terms")
    decoder = WhisperDecoder("tiny.en")
    decoder.decode(np.zeros(RATE, dtype=np.float32))
    stats = {name: {"runaway": 0, "text": 0, "seconds": 0.0, "found": 0, "first_ok": 0} for name, _ in configs}
    references = {clip.name: clip.reference for clip, _ in items}
    for k, window in enumerate(windows):
        for j in range(len(configs)):
            name, options = configs[(j + k) % len(configs)]  # alternate who goes first
            began = time.perf_counter()
            kwargs: dict[str, object] = {"hotwords": keyterm_text(window.keyterms), "window_pad_s": 2.0, **options}
            text = decoder.decode(window.audio, **kwargs).text  # type: ignore[arg-type]
            row = stats[name]
            row["seconds"] += time.perf_counter() - began
            row["text"] += bool(text)
            row["found"] += any(term_found(t, text) for t in window.keyterms)
            said, heard = match_text(references[window.clip]).split()[:1], match_text(text).split()[:1]
            row["first_ok"] += bool(said) and said == heard
            if runaway(text, window.speech_s):
                row["runaway"] += 1
                if args.show:
                    print(f"  [{name}] {window.clip} [{window.start}:{window.start + len(window.audio)}] "
                          f"{window.speech_s:.2f} s: {text[:160]!r}")
    print(f"{'config':10s} {'runaway':>8s} {'with text':>9s} {'decode ms':>9s} {'keyterm in':>10s} {'1st word':>8s}")
    for name, _ in configs:
        row = stats[name]
        print(f"{name:10s} {row['runaway']:8.0f} {row['text']:9.0f} {1000 * row['seconds'] / len(windows):9.0f} "
              f"{row['found']:10.0f} {row['first_ok']:8.0f}")


if __name__ == "__main__":
    main()
