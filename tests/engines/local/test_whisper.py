"""WhisperDecoder on real corpus audio (tiny.en): short-window decoding and its guards."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from tests.support import clip, wer
from voxrelay.engines.local.prompting import keyterm_text
from voxrelay.engines.local.token_guards import drop_repeats
from voxrelay.engines.local.whisper import Context, DecodeRequest, WhisperDecoder

# Clips of ordinary dictation, each a single utterance of 3-7 s.
DICTATION = ["s10_dictation_email.wav", "librivox_sas_0870.wav", "s07_names_message.wav"]


@pytest.fixture(scope="module")
def decoder() -> WhisperDecoder:
    return WhisperDecoder("tiny.en")


def faster(pcm: np.ndarray, speed: float) -> np.ndarray:
    """The same speech `speed` times faster (and higher): a fast talker."""
    return soxr.resample(pcm, 16000 * speed, 16000).astype(np.float32)


def test_fast_speech_keeps_its_last_words(decoder: WhisperDecoder) -> None:
    """At 1.3x speed the short window must say as much as the full 30 s window (its token cap is no limit)."""
    chosen = [clip(name) for name in DICTATION]
    audio = [faster(c.pcm(), 1.3) for c in chosen]
    short = [decoder.decode(a, window_pad_s=8.0).text for a in audio]
    full = [decoder.decode(a, window_pad_s=None).text for a in audio]
    references = [c.reference for c in chosen]
    assert wer(references, short) <= wer(references, full) + 0.03, short


def test_repeat_guard_keeps_repeated_digits_and_cuts_repeated_phrases(decoder: WhisperDecoder) -> None:
    tokenizer = decoder._tokenizer

    def segments(*texts: str) -> list[tuple[float, list[int]]]:
        return [(i * 0.5, tokenizer.encode(" " + t)) for i, t in enumerate(texts)]

    def text(kept: list[tuple[float, list[int]]]) -> str:
        return tokenizer.decode([token for _, tokens in kept for token in tokens]).strip()

    # A digit said twice is speech ("four four nine eight"), not a runaway repetition.
    assert text(drop_repeats(segments("4", "4", "9 8"), tokenizer, 3.0)) == "4 4 9 8"
    # A phrase of three or more words said again is Whisper repeating itself on a short window.
    kept = drop_repeats(segments("ask what you can do", "ask what you can do"), tokenizer, 3.0)
    assert text(kept) == "ask what you can do"
    # A segment that starts at the very end of the audio holds no speech of it.
    assert text(drop_repeats(segments("hello there", "and more"), tokenizer, 0.55)) == "hello there"


def test_repeat_guard_cuts_a_repeat_of_the_context(decoder: WhisperDecoder) -> None:
    tokenizer = decoder._tokenizer
    segments = [(0.0, tokenizer.encode(" and so my fellow Americans")), (1.0, tokenizer.encode(" ask not"))]
    assert drop_repeats(segments, tokenizer, 3.0, seen=("and so my fellow americans",)) == []


def test_silence_after_a_context_says_nothing(decoder: WhisperDecoder) -> None:
    """Context makes Whisper continue a transcript; after it, silence must not become words."""
    speech = clip("jfk_inaugural.wav").pcm()[: 3 * 16000]
    said = decoder.decode(speech, window_pad_s=8.0)
    assert said.text and said.spans
    context = Context(speech, said.text)
    for quiet in (np.zeros(16000, dtype=np.float32), 0.003 * np.random.default_rng(3).standard_normal(16000)):
        assert decoder.decode(quiet.astype(np.float32), window_pad_s=8.0, context=context).text == ""


def test_a_full_glossary_leaves_room_for_the_whole_transcript(decoder: WhisperDecoder) -> None:
    """The earlier-text block at its 223-token cap: the transcript still runs to its last word.

    CTranslate2 counts that block in `max_length`; when the cap ignored it, 30 keyterms cut
    this clip short and 40 crashed the process.
    """
    glossary = keyterm_text(("Kenji Watanabe", *(f"Term{i}" for i in range(100))))
    for pad, beam in ((2.0, 1), (8.0, 2)):  # the interim and the final settings
        text = decoder.decode(clip("s07_names_message.wav").pcm(), hotwords=glossary, window_pad_s=pad, beam_size=beam)
        assert "watanabe" in text.text.lower() and "thursday" in text.text.lower(), text.text


def test_short_windows_under_a_long_glossary_do_not_loop(decoder: WhisperDecoder) -> None:
    """First interims under issue 13's 46-keyterm glossary (the windows `scripts/interim_loops.py` gives them).

    Before issue 16 they ran to ~200 tokens: "Ever ever ever ...", "Please, please, please, ...".
    """
    from voxrelay.bench.keyterms import find_keyterm_set, glossary, load_keyterm_set

    hotwords = keyterm_text(glossary(load_keyterm_set(find_keyterm_set())))
    for name, start, end in (("moonshine_beckett.wav", 320, 8000), ("vctk_p226_001.wav", 11072, 19200)):
        text = decoder.decode(clip(name).pcm()[start:end], hotwords=hotwords, window_pad_s=2.0).text
        assert 0 < len(text.split()) <= 3, (name, text)


def test_a_one_thread_token_handle_decodes_the_same_words(decoder: WhisperDecoder) -> None:
    """`token_threads` moves generation and word alignment to a second handle of the model: same tokens, same timings.

    Beam search with a context, word alignment after it, and a greedy interim: everything the token loop does.
    """
    separate = WhisperDecoder("tiny.en", token_threads=1)
    assert separate._tokens is not separate._model.model  # the second handle is really in use
    same_threads = WhisperDecoder("tiny.en", cpu_threads=1, token_threads=1)
    assert same_threads._tokens is same_threads._model.model  # a handle with the same threads would only cost memory
    before, pcm = clip("s13_pause_letter.wav").pcm()[: 16000 * 3], clip("s10_dictation_email.wav").pcm()
    context = Context(before, decoder.decode(before, window_pad_s=8.0).text)
    for options in (
        {"beam_size": 2, "word_timestamps": True, "context": context},
        {"beam_size": 1, "word_timestamps": False},
    ):
        shared = decoder.decode(pcm, window_pad_s=8.0, **options)  # type: ignore[arg-type]
        own = separate.decode(pcm, window_pad_s=8.0, **options)  # type: ignore[arg-type]
        assert shared.text and wer([clip("s10_dictation_email.wav").reference], [own.text]) < 0.2
        assert own.text == shared.text
        assert [(w.word, round(w.start, 2), round(w.end, 2)) for w in own.words] == [
            (w.word, round(w.start, 2), round(w.end, 2)) for w in shared.words
        ]



def test_a_batch_of_windows_says_what_each_says_alone(decoder: WhisperDecoder) -> None:
    """Interims of several sessions decoded as one batch: same words as one by one, each in its own slot."""
    names = ["s02_command_timer.wav", "s10_dictation_email.wav", "librivox_sas_0870.wav", "s07_names_message.wav"]
    chosen = [clip(name) for name in names]
    audio = [c.pcm()[: int(16000 * min(5.0, c.duration))] for c in chosen]  # windows of 2.5-5 s: padded to the longest
    requests = [DecodeRequest(a, window_pad_s=2.0) for a in audio]
    # Left out of the batch and answered in their slots: digital silence, and a request with a context.
    silence = DecodeRequest(np.zeros(16000, dtype=np.float32), window_pad_s=2.0)
    with_context = DecodeRequest(audio[0], window_pad_s=2.0, context=Context(audio[1][:16000], "Hello"))
    assert with_context.group is None and requests[0].group is not None
    batch = decoder.decode_batch([requests[0], silence, *requests[1:], with_context])
    assert len(batch) == 6 and batch[1].text == ""
    alone = [decoder.decode_request(r).text for r in requests]
    together = [batch[0].text, *(d.text for d in batch[2:5])]
    assert all(together), together
    # Each slot holds its own clip's words (a mix-up would put a whole other sentence there) ...
    for text, one, c in zip(together, alone, chosen, strict=True):
        assert wer([one], [text]) <= 0.25, (c.name, one, text)
    # ... and the batch as a whole loses no more words against the references than decoding one by one.
    references = [c.reference for c in chosen]
    assert wer(references, together) <= wer(references, alone) + 0.05, (together, alone)
    assert wer([decoder.decode_request(with_context).text], [batch[5].text]) == 0.0
