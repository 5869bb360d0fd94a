"""Streaming WER of the local engine against whole-file faster-whisper, clip by clip.

    PYTHONPATH=src .venv/bin/python scripts/wer_gap.py [--set final_beam_size=2] [--out run.json] [--glossary]

Streams the benchmark's corpus (subsets real + synth) through `voxrelay.bench.offline`
(no server, as fast as the CPU allows; the finals are the ones the benchmark gets) and
prints each clip's error counts for both, the pooled WERs and the final decode times.
--glossary configures every stream with all the keyterms of tests/fixtures/keyterms (issue 13:
what an unrelated glossary does to WER and decode time).
Whole-file transcripts do not depend on voxrelay's code, so they are cached.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jiwer
import numpy as np

from voxrelay.bench.common import find_corpus, load_clips
from voxrelay.bench.local import whole_file_transcripts
from voxrelay.bench.offline import run_offline
from voxrelay.bench.wer import normalize, wer
from voxrelay.engines.local.settings import LocalSettings

CACHE = Path("/tmp/voxrelay_whole_file.json")


def errors(reference: str, hypothesis: str) -> int:
    out = jiwer.process_words(normalize(reference), normalize(hypothesis))
    return out.substitutions + out.deletions + out.insertions


def parse_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", action="append", default=[], help="LocalEngine option, e.g. final_beam_size=2")
    parser.add_argument("--out", help="write clips, transcripts and timings as JSON here")
    parser.add_argument("--all", action="store_true", help="print every clip, not only those with errors")
    parser.add_argument("--glossary", action="store_true", help="every stream gets the keyterm set's keyterms")
    args = parser.parse_args()
    options = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}

    clips = load_clips(find_corpus())
    names = [c.name for c in clips]
    cached = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if cached.get("clips") != names:
        cached = {"clips": names, "transcripts": whole_file_transcripts(clips)}
        CACHE.write_text(json.dumps(cached))
    whole = cached["transcripts"]

    began = time.perf_counter()
    terms: tuple[str, ...] = ()
    if args.glossary:
        from voxrelay.bench.keyterms import find_keyterm_set, glossary, load_keyterm_set

        terms = glossary(load_keyterm_set(find_keyterm_set()))
        print(f"glossary: {len(terms)} keyterms")
    res = run_offline(clips, LocalSettings(**options), keyterms=terms)
    elapsed = time.perf_counter() - began

    total_s = total_w = words = 0
    for clip, streamed, finals, whole_text in zip(clips, res.transcripts, res.finals, whole, strict=True):
        es, ew = errors(clip.reference, streamed), errors(clip.reference, whole_text)
        total_s, total_w, words = total_s + es, total_w + ew, words + len(normalize(clip.reference).split())
        if es or ew or args.all:
            print(f"{clip.name:34s} stream {es}  whole {ew}  {'<<' if es > ew else ''}")
            print(f"    finals: {finals}")
            if es != ew:
                print(f"    whole : {whole_text!r}")
    streaming, whole_file = wer(res.references, res.transcripts), wer(res.references, whole)
    decode_ms = 1000 * np.array(res.final_decode_s)
    print(
        f"\nstreaming WER {100 * streaming:.2f} % ({total_s} errors), whole-file {100 * whole_file:.2f} % "
        f"({total_w}), gap {100 * (streaming - whole_file):.2f} points over {words} words"
    )
    print(
        f"finals {len(decode_ms)}: decode mean {decode_ms.mean():.0f} ms, p50 {np.percentile(decode_ms, 50):.0f}, "
        f"p95 {np.percentile(decode_ms, 95):.0f}, total {decode_ms.sum() / 1000:.1f} s; run {elapsed:.0f} s"
    )
    if args.out:
        Path(args.out).write_text(
            json.dumps({"options": options, "streaming_wer": streaming, "whole_file_wer": whole_file, **res.__dict__})
        )


if __name__ == "__main__":
    main()
