"""The long-utterance set: built the same way every time, 5-20 s of speech, no pause the engine's VAD would end."""

from __future__ import annotations

import numpy as np
import pytest

from voxrelay.bench.common import RATE, Clip, find_corpus, load_clips, speech_bounds
from voxrelay.bench.longset import (
    GAP_S,
    JOINS,
    MAX_PAUSE_S,
    SINGLES,
    LongClip,
    PauseMeter,
    build_long_set,
    check_long_clip,
    join_sentences,
    longest_inner_run,
)


@pytest.fixture(scope="module")
def meter() -> PauseMeter:
    return PauseMeter()


def test_the_set_is_deterministic_and_every_clip_is_a_long_utterance_without_a_pause(meter: PauseMeter) -> None:
    first, again = build_long_set(find_corpus(), meter), build_long_set(find_corpus(), meter)
    assert [c.clip.name for c in first] == [*SINGLES, *(f"joined_{i:02d}" for i in range(len(JOINS)))]
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.clip.pcm, b.clip.pcm) and a.clip.reference == b.clip.reference
    for long in first:
        assert 5.0 <= long.speech_s <= 20.0, (long.clip.name, long.speech_s)
        assert meter.longest_pause_s(long.clip.trimmed()) < MAX_PAUSE_S, long.clip.name
    # The lengths spread over the range, so a slope against length means something.
    speech = sorted(c.speech_s for c in first)
    assert speech[0] < 6 and speech[-1] > 15


def test_a_joined_clip_holds_every_sentence_and_its_reference(meter: PauseMeter) -> None:
    joined = build_long_set(find_corpus(), meter)[len(SINGLES)]
    names = JOINS[0]
    by_name = {c.name: c for c in load_clips(find_corpus())}
    assert joined.kind == "joined" and joined.sources == names
    assert joined.clip.reference == " ".join(by_name[n].reference for n in names)
    # Every sentence's speech is in there, with only the gaps and the edges added.
    parts = sum(len(meter.sentence(by_name[n])) for n in names)
    assert len(joined.clip.pcm) == parts + (len(names) - 1) * int(GAP_S * RATE) + 2 * int(0.3 * RATE)


def test_a_clip_with_a_pause_inside_or_the_wrong_length_is_refused(meter: PauseMeter) -> None:
    """s12 has 2.5 s of silence between its sentences: joined with another, the set's check catches it."""
    by_name = {c.name: c for c in load_clips(find_corpus())}
    pcm = join_sentences([by_name["s12_pause_shopping.wav"].pcm, by_name["s07_names_message.wav"].pcm])
    paused = LongClip(Clip("paused", "", pcm, *speech_bounds(pcm)), "joined", ())
    with pytest.raises(ValueError, match="paused: a pause of 2"):
        check_long_clip(paused, meter)
    short = LongClip(by_name["s07_names_message.wav"], "single", ())
    with pytest.raises(ValueError, match="s of speech, not 5-20"):
        check_long_clip(short, meter)


def test_the_longest_inner_run_ignores_leading_and_trailing_quiet() -> None:
    quiet = np.array([1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1], dtype=bool)
    assert longest_inner_run(quiet) == 3
    assert longest_inner_run(np.ones(5, dtype=bool)) == 0


def test_a_long_clip_reports_its_speech_length() -> None:
    clip = Clip("x", "", np.zeros(RATE * 8, dtype=np.float32), 0.5, 7.25)
    assert LongClip(clip, "report-only", ("x",)).speech_s == pytest.approx(6.75)
