"""The offline harness on the benchmark's corpus: the goal "streaming WER within 1 point of whole-file"."""

from __future__ import annotations

from voxrelay.bench.common import find_corpus, load_clips
from voxrelay.bench.local import whole_file_transcripts
from voxrelay.bench.offline import run_offline
from voxrelay.bench.wer import wer


def test_streaming_wer_within_a_point_of_whole_file() -> None:
    clips = load_clips(find_corpus())
    results = run_offline(clips)
    references = [c.reference for c in clips]
    streaming = wer(references, results.transcripts)
    whole_file = wer(references, whole_file_transcripts(clips))
    print(f"streaming WER {streaming:.4f}, whole-file {whole_file:.4f}, {len(results.final_decode_s)} finals")
    assert results.clips == [c.name for c in clips]
    assert len(results.final_decode_s) >= len(clips)  # every clip gave at least one final
    assert streaming <= whole_file + 0.01
