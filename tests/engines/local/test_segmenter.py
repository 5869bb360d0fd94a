"""Segmenter with hand-made VAD probabilities: no model involved."""

import numpy as np

from voxrelay.engines.local.segmenter import Segmenter, SegmenterConfig
from voxrelay.engines.local.vad import WINDOW

RATE = 16000


def feed(seg: Segmenter, probs: list[float]):  # type: ignore[no-untyped-def]
    """Add one window of audio per probability; return the cuts made."""
    cuts = []
    for p in probs:
        seg.add_audio(np.full(WINDOW, p, dtype=np.float32))  # audio value = prob, to trace samples
        cut = seg.add_probabilities(np.array([p]))
        if cut is not None:
            cuts.append(cut)
    return cuts


def windows(ms: float) -> int:
    return int(ms * RATE / 1000 / WINDOW)


def test_silence_is_never_cut_and_buffer_stays_small() -> None:
    seg = Segmenter(SegmenterConfig())
    assert feed(seg, [0.01] * windows(5000)) == []
    assert seg.cut_now() is None
    audio, _ = seg.segment_audio()
    assert len(audio) <= 0.3 * RATE + WINDOW  # only the pre-roll is kept


def test_endpoint_after_silence() -> None:
    seg = Segmenter(SegmenterConfig(endpointing_ms=300))
    cuts = feed(seg, [0.0] * 20 + [0.9] * 30 + [0.0] * windows(400))
    assert len(cuts) == 1
    cut = cuts[0]
    assert cut.speech_final
    assert abs(cut.speech_start - 20 * WINDOW / RATE) < 1e-6
    assert abs(cut.speech_end - 50 * WINDOW / RATE) < 1e-6
    # The segment holds the pre-roll, all the speech and a little post-roll.
    assert cut.start <= cut.speech_start - 0.25
    assert np.count_nonzero(cut.audio == np.float32(0.9)) == 30 * WINDOW
    assert seg.speech_started is not None


def test_short_pause_does_not_end_the_utterance() -> None:
    seg = Segmenter(SegmenterConfig(endpointing_ms=300))
    cuts = feed(seg, [0.9] * 20 + [0.0] * windows(200) + [0.9] * 20 + [0.0] * windows(400))
    assert len(cuts) == 1
    assert np.count_nonzero(cuts[0].audio == np.float32(0.9)) == 40 * WINDOW


def test_hysteresis_keeps_speech_above_keep_threshold() -> None:
    seg = Segmenter(SegmenterConfig(endpointing_ms=300))
    cuts = feed(seg, [0.9] * 5 + [0.4] * windows(1000))
    assert cuts == []  # 0.4 is below the start threshold but keeps an utterance going
    assert seg.in_speech


def test_blips_are_not_speech() -> None:
    seg = Segmenter(SegmenterConfig(endpointing_ms=100, min_speech_ms=64))
    cuts = feed(seg, [0.0] * 10 + [0.9] + [0.0] * windows(500))
    assert cuts == [] and seg.cut_now() is None


def test_cut_now_takes_everything_including_unfinished_speech() -> None:
    seg = Segmenter(SegmenterConfig())
    feed(seg, [0.0] * 10 + [0.9] * 10)
    cut = seg.cut_now()
    assert cut is not None and cut.speech_final
    assert np.count_nonzero(cut.audio == np.float32(0.9)) == 10 * WINDOW
    assert seg.cut_now() is None  # nothing left


def test_long_utterance_is_cut_at_its_quietest_point_without_losing_audio() -> None:
    seg = Segmenter(SegmenterConfig(max_segment_s=4.0, endpointing_ms=300))
    probs = [0.9] * windows(3200) + [0.4] + [0.9] * windows(3000) + [0.0] * windows(500)
    cuts = feed(seg, probs)
    assert len(cuts) == 2
    assert not cuts[0].speech_final and cuts[1].speech_final
    # The first cut ends right after the quiet window; segments are disjoint and contiguous.
    assert abs(cuts[0].start + len(cuts[0].audio) / RATE - cuts[1].start) < 1e-6
    total_speech = sum(np.count_nonzero(c.audio >= np.float32(0.4)) for c in cuts)
    assert total_speech == (len(probs) - windows(500)) * WINDOW


def test_cut_between_splits_speech_in_its_quietest_window_and_the_utterance_goes_on() -> None:
    seg = Segmenter(SegmenterConfig(max_segment_s=30.0, endpointing_ms=300))
    speech = [0.9] * 40 + [0.6, 0.4, 0.7] + [0.9] * 40  # the dip is window 41 (0.4) of the speech
    feed(seg, [0.0] * 10 + speech)
    window_s = WINDOW / RATE
    dip = (10 + 41) * window_s
    cut = seg.cut_between(dip - 0.1, dip + 0.1)
    assert cut is not None and not cut.speech_final
    assert abs(cut.start + len(cut.audio) / RATE - (dip + window_s / 2)) < 1e-6  # in the middle of the dip
    assert seg.in_speech and seg.speech_started is None  # no new SpeechStarted: the same utterance
    rest = seg.cut_now()
    assert rest is not None and abs(rest.start - (dip + window_s / 2)) < 1e-6
    total = sum(np.count_nonzero(c.audio >= np.float32(0.4)) for c in (cut, rest))
    assert total == len(speech) * WINDOW  # nothing lost, nothing twice


def test_cut_between_refuses_outside_scored_speech() -> None:
    seg = Segmenter(SegmenterConfig())
    feed(seg, [0.0] * 10)
    assert seg.cut_between(0.1, 0.2) is None  # no speech yet
    feed(seg, [0.9] * 20)
    end = seg.end_time
    assert seg.cut_between(end + 0.5, end + 1.0) is None  # not scored yet
    assert seg.cut_between(0.0, 0.0) is None  # at the segment's first sample: nothing to cut off


def test_endpoint_audio_is_the_endpoint_cut_known_from_the_post_roll_on() -> None:
    seg = Segmenter(SegmenterConfig(endpointing_ms=300))
    feed(seg, [0.0] * 20 + [0.9] * 30)
    assert seg.endpoint_audio() is None  # still speaking
    early, quiet = None, 0
    while not (cuts := feed(seg, [0.0])):
        quiet += 1
        ready = seg.endpoint_audio()
        assert (ready is not None) == (quiet * WINDOW >= 0.2 * RATE), quiet  # from the 200 ms post-roll on
        if ready is not None and early is None:
            early = ready
    assert early is not None
    audio, start = early
    assert cuts[0].speech_final and start == cuts[0].start
    assert np.array_equal(audio, cuts[0].audio)  # the audio the endpoint took
    assert seg.endpoint_audio() is None  # nothing pending after the cut


def test_endpoint_audio_is_withdrawn_when_speech_resumes() -> None:
    seg = Segmenter(SegmenterConfig(endpointing_ms=300))
    feed(seg, [0.9] * 30 + [0.0] * windows(250))
    ready = seg.endpoint_audio()
    assert ready is not None
    feed(seg, [0.9] * 10)
    assert seg.endpoint_audio() is None
    cuts = feed(seg, [0.0] * windows(400))
    assert len(cuts) == 1 and len(cuts[0].audio) > len(ready[0])  # the later endpoint takes the resumed speech
