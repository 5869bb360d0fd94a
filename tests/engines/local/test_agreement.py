"""PrefixAgreement with hand-made word timings: no model involved."""

from voxrelay.engines.base import Word
from voxrelay.engines.local.agreement import AgreementConfig, PrefixAgreement, plausible, spoken


def words(text: str, start: float = 0.0, step: float = 0.4) -> tuple[Word, ...]:
    """One word every `step` seconds; "," alone is a punctuation-only word of the alignment (no time of its own)."""
    out: list[Word] = []
    t = start
    for token in text.split():
        if token == ",":
            out.append(Word("", t, t, 0.9, ","))
            continue
        out.append(Word(token.lower(), t, t + step, 0.9, token))
        t += step
    return tuple(out)


CONFIG = AgreementConfig(min_pending_s=3.0, margin_s=1.0, min_commit_s=1.0)


def test_nothing_is_committed_from_one_decode() -> None:
    agreement = PrefixAgreement(CONFIG)
    assert agreement.offer(words("the child almost hurt the small dog at that"), 4.0) is None


def test_two_decodes_commit_the_agreed_words_that_end_well_before_the_newest_audio() -> None:
    agreement = PrefixAgreement(CONFIG)
    agreement.offer(words("the child almost hurt the small dog at"), 3.3)
    commit = agreement.offer(words("the child almost hurt the small dog at that high"), 4.0)
    assert commit is not None
    # Words end at 0.4, 0.8, ...: "dog" at 2.8, "at" at 3.2 (> 4.0 - 1.0 margin).
    assert [w.word for w in commit.words] == ["the", "child", "almost", "hurt", "the", "small", "dog"]
    assert abs(commit.cut_after - 2.8) < 1e-9 and commit.cut_before == commit.words[-1].end
    assert abs(commit.cut_before - 2.8) < 1e-9  # the next agreed word, "at", starts there


def test_the_word_after_the_commit_must_be_agreed_too() -> None:
    agreement = PrefixAgreement(CONFIG)
    agreement.offer(words("the child almost hurt a small"), 4.0)
    commit = agreement.offer(words("the child almost hurt the small dog at that high"), 4.0)
    assert commit is not None
    assert [w.word for w in commit.words] == ["the", "child", "almost"]  # "hurt" is agreed, "the"/"a" not


def test_segments_shorter_than_min_pending_s_never_commit() -> None:
    agreement = PrefixAgreement(CONFIG)
    agreement.offer(words("the child almost hurt the small"), 2.9)
    assert agreement.offer(words("the child almost hurt the small"), 2.9) is None


def test_words_within_the_margin_of_the_newest_audio_are_not_committed() -> None:
    agreement = PrefixAgreement(AgreementConfig(min_pending_s=3.0, margin_s=1.0, min_commit_s=1.5))
    slow = words("the child almost", step=1.2)  # ends 1.2, 2.4, 3.6
    agreement.offer(slow, 3.0)
    assert agreement.offer(slow, 3.0) is None  # "child" ends past 3.0 - 1.0; "the" alone is under 1.5 s
    commit = agreement.offer(slow, 3.5)
    assert commit is not None and [w.word for w in commit.words] == ["the", "child"]


def test_a_commit_shorter_than_min_commit_s_is_refused() -> None:
    agreement = PrefixAgreement(AgreementConfig(min_pending_s=1.0, margin_s=1.0, min_commit_s=1.0))
    short = words("a b c", step=0.3)
    agreement.offer(short, 1.6)
    assert agreement.offer(short, 1.6) is None  # "a" ends at 0.3 < 1.0; "b" at 0.6 is too


def test_reset_forgets_the_previous_decode() -> None:
    agreement = PrefixAgreement(CONFIG)
    agreement.offer(words("the child almost hurt the small dog at that high"), 4.0)
    agreement.reset()
    assert agreement.offer(words("the child almost hurt the small dog at that high"), 4.0) is None


def test_punctuation_only_words_do_not_end_an_agreement_and_stay_in_the_text() -> None:
    agreement = PrefixAgreement(CONFIG)
    agreement.offer(words("the small dog , at that high level the air"), 4.0)
    commit = agreement.offer(words("the small dog , at that high level the air is"), 4.4)
    assert commit is not None
    assert [w.punctuated_word for w in commit.words][:4] == ["the", "small", "dog,", "at"]


def test_loops_are_not_committed_even_when_two_decodes_agree() -> None:
    agreement = PrefixAgreement(CONFIG)
    loop = words("he was not an old -y -y -y -y -y -y", step=0.3)
    agreement.offer(loop, 4.0)
    assert agreement.offer(loop, 4.0) is None
    crowded = words("one two three four five six seven eight nine ten", step=0.05)
    assert not plausible(crowded, 7.0)
    assert plausible(words("one two three four"), 7.0)


def test_spoken_merges_punctuation_into_the_word_before() -> None:
    merged = spoken(words("hello , world"))
    assert [w.punctuated_word for w in merged] == ["hello,", "world"]
    assert spoken(words(", hello"))[0].punctuated_word == "hello"  # nothing before it to carry it
