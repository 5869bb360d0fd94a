"""Dictation on ordinary speech: over every corpus clip, the converter turns no word into punctuation.

The corpus (tests/fixtures/audio and /work/shared/corpus/*/ when present, each recording once)
has no punctuation commands in it, so every word the converter would remove is a false
conversion. Two transcripts of each clip are judged, both decoded by the local engine's `WhisperDecoder`
as it decodes a final (beam, window padding and word timings as configured), the whole clip as
one segment (streaming each clip through the engine took 150 s here, too long for this check):
- unprimed, as without dictation;
- primed with the command words (`GLOSSARY`), as the engine decodes with dictation on: priming
  must not make Whisper write "comma" or "period" where nobody said it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support import AUDIO
from voxrelay.client import load_audio
from voxrelay.engines.base import Word
from voxrelay.engines.local.prompting import keyterm_text
from voxrelay.engines.local.settings import LocalSettings
from voxrelay.engines.local.whisper import WhisperDecoder
from voxrelay.protocol.dictation import GLOSSARY, dictate_words

SHARED = Path("/work/shared/corpus")


def corpus() -> list[Path]:
    """Every corpus recording once (the shared corpus repeats the fixtures)."""
    seen: set[str] = set()
    paths = []
    for path in sorted(AUDIO.glob("*.wav")) + sorted(SHARED.glob("*/*.wav")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def decoder() -> WhisperDecoder:
    return WhisperDecoder(LocalSettings().model)


def spoken(words: tuple[Word, ...]) -> int:
    return sum(any(c.isalnum() for c in w.punctuated_word) for w in words)


def test_no_corpus_word_becomes_punctuation(decoder: WhisperDecoder) -> None:
    paths = corpus()
    assert len(paths) >= 40, paths
    settings = LocalSettings()
    words = removed = 0
    changed: list[str] = []
    for path in paths:
        pcm = load_audio(str(path), 16000)
        for glossary in (None, keyterm_text(GLOSSARY)):
            decoded = decoder.decode(
                pcm,
                hotwords=glossary,
                beam_size=settings.final_beam_size,
                word_timestamps=True,
                window_pad_s=settings.final_window_pad_s,
            )
            text, kept = dictate_words(decoded.words, final=True)
            words += spoken(decoded.words)
            removed += spoken(decoded.words) - len(kept)
            if spoken(decoded.words) != len(kept):
                changed.append(f"{path.name} (primed: {glossary is not None}): {decoded.text!r} -> {text!r}")
    print(f"\ncorpus: {removed} of {words} words converted over {len(paths)} clips (two transcripts each)")
    assert removed == 0, changed
