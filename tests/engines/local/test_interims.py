from voxrelay.engines.local.interims import InterimPacer


def due(pacer: InterimPacer, end: float, *, start: float = 1.0, hearing: bool = True, shown: bool = True) -> bool:
    return pacer.due(speech_start=start, speech_end=end, hearing_speech=hearing, shown_text=shown)


def test_the_first_decode_waits_for_enough_speech() -> None:
    pacer = InterimPacer(interval_s=0.5, first_s=0.2)  # the thresholds are set here: the defaults may be tuned
    assert not due(pacer, 1.1, shown=False)
    assert due(pacer, 1.2, shown=False)


def test_an_utterance_without_text_is_asked_again_sooner() -> None:
    pacer = InterimPacer(interval_s=0.5, first_s=0.2, retry_s=0.2)
    pacer.asked(1.2)
    pacer.answered()  # no text came back
    assert not due(pacer, 1.3, shown=False)
    assert due(pacer, 1.4, shown=False)
    assert not due(pacer, 1.4, shown=True)  # with text shown, the interval applies
    assert due(pacer, 1.7, shown=True)


def test_interims_follow_new_speech_not_the_clock() -> None:
    pacer = InterimPacer(interval_s=0.5)
    pacer.asked(2.0)
    pacer.answered()
    # Audio goes on but the speech ended at 2.3: a pause, maybe the end; the final will replace an interim.
    assert not due(pacer, 2.3, hearing=False)
    assert not due(pacer, 2.3)  # only 0.3 s of new speech
    assert due(pacer, 2.5)
    assert not due(pacer, 2.6, hearing=False)  # enough new speech, but a pause has begun


def test_one_interim_at_a_time() -> None:
    pacer = InterimPacer(interval_s=0.5)
    pacer.asked(2.0)
    assert not due(pacer, 3.0)
    pacer.answered()
    assert due(pacer, 3.0)


def test_no_interim_while_a_stop_is_on_its_way() -> None:
    pacer = InterimPacer(interval_s=0.5)
    pacer.stop_coming()
    pacer.stop_coming()  # a finalize, then a stop, both queued
    assert not due(pacer, 3.0)
    pacer.stop_handled()
    assert not due(pacer, 3.0)
    pacer.stop_handled()
    assert due(pacer, 3.0)


def test_a_new_segment_counts_its_speech_from_zero() -> None:
    pacer = InterimPacer(interval_s=0.5)
    pacer.asked(7.9)
    pacer.answered()
    pacer.new_segment()  # a length cut at 8.0: the rest of the utterance is a new segment
    assert due(pacer, 8.3, start=8.0)
