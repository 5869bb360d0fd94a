"""Word error rate as the benchmarks and tests judge it: Whisper's English normalizer, then jiwer."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["normalize", "wer"]

_normalizer = None


def normalize(text: str) -> str:
    global _normalizer
    if _normalizer is None:
        from whisper_normalizer.english import EnglishTextNormalizer

        _normalizer = EnglishTextNormalizer()
    return " ".join(_normalizer(text).split())


def wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Pooled WER over all pairs (total errors / total reference words)."""
    import jiwer

    return float(jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses]))
