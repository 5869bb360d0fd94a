"""The long-utterance set (issue 16): 5-20 s of speech without a pause, built from the corpus at bench time.

A stop after a long sentence is where the local engine's latency grows; the corpus clips are mostly short
or split by pauses, so little audio is pending at their stop. This set is built deterministically from the
clips shipped in `tests/fixtures/audio` (so a fresh clone can run it, and no new audio is committed):

- *single*: corpus recordings of one sentence with 5-20 s of speech and no pause of 300 ms inside;
- *joined*: corpus sentences cut to their speech (energy gate with a 40 ms margin, at most 60 ms beyond the
  VAD's speech), brought to the same peak level and joined with 50 ms of silence, 0.3 s of silence before and after.

A pause is what the engine sees: a run of Silero VAD windows (32 ms) under the engine's keep threshold (0.35)
between the first and last window of speech. Every clip is checked against the rules as it is built, so a
change of the corpus or of the VAD that breaks them fails loudly instead of measuring something else.

Every clip here is **development material**: the engine was tuned on these corpus clips. Report-only clips
(never tuned on) are a folder passed to `voxrelay bench --long-set DIR`, e.g. `scripts/make_long_set.py tts`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxrelay.bench.common import RATE, Clip, load_clips, speech_bounds

__all__ = [
    "JOINS",
    "MAX_PAUSE_S",
    "MAX_SPEECH_S",
    "MIN_SPEECH_S",
    "SINGLES",
    "LongClip",
    "PauseMeter",
    "build_long_set",
    "check_long_clip",
    "join_sentences",
    "load_report_set",
]

MIN_SPEECH_S, MAX_SPEECH_S = 5.0, 20.0
MAX_PAUSE_S = 0.3  # the "no pause of 300 ms inside" (endpointing is 300 ms)
GAP_S = 0.05  # between joined sentences
MARGIN_S = 0.04  # kept around each sentence's loud frames, so soft onsets and endings stay whole
VAD_MARGIN_S = 0.06  # ... but no further than this from the VAD's first and last window of speech
EDGE_S = 0.3  # silence before and after a joined clip, as in the corpus' synthetic clips

# Recordings of one sentence that already meet the rules (checked when built).
SINGLES = ("librivox_sas_0870.wav", "librivox_sas_0920.wav", "ljspeech_LJ001-0003.wav", "ljspeech_LJ001-0004.wav")

# Sentences joined into one utterance: the same speaker where the corpus has several of theirs.
JOINS = (
    ("speechbrain_spk1_snt1.wav", "speechbrain_spk1_snt3.wav", "speechbrain_spk1_snt4.wav",
     "speechbrain_spk1_snt5.wav"),
    ("librivox_sas_0880.wav", "librivox_sas_0890.wav", "librivox_sas_0930.wav"),
    ("fw_stereo_left.wav", "fw_stereo_right.wav"),
    ("vctk_p225_002.wav", "timit_LDC93S1.wav", "deepspeech_new_home.wav", "vctk_p226_001.wav"),
    ("pocketsphinx_cards_005.wav", "speechbrain_example1.wav", "speechbrain_example5.wav",
     "pocketsphinx_goforward.wav"),
    ("s07_names_message.wav", "s08_names_flight.wav", "s05_numbers_money.wav", "s06_numbers_date_time.wav"),
    ("s03_question_weather.wav", "s14_question_distance.wav", "s02_command_timer.wav", "s01_command_lights.wav"),
)


@dataclass(frozen=True)
class LongClip:
    """A clip of the set: `kind` is `single`, `joined` (development material) or `report-only`."""

    clip: Clip
    kind: str
    sources: tuple[str, ...]

    @property
    def speech_s(self) -> float:
        return self.clip.speech_end - self.clip.speech_start


class PauseMeter:
    """The longest pause inside the speech of a clip, as the engine's Silero VAD sees it."""

    KEEP_THRESHOLD = 0.35  # the local engine's segmenter: once speaking, a window above this is still speech

    def __init__(self) -> None:
        from voxrelay.engines.local.vad import SileroVad

        self._vad = SileroVad()

    def _speech(self, pcm: np.ndarray) -> np.ndarray:
        from voxrelay.engines.local.vad import VadState

        return self._vad.probabilities(VadState(), pcm, flush=True) >= self.KEEP_THRESHOLD

    def longest_pause_s(self, pcm: np.ndarray) -> float:
        from voxrelay.engines.local.vad import WINDOW

        return longest_inner_run(~self._speech(pcm)) * WINDOW / RATE

    def sentence(self, clip: Clip) -> np.ndarray:
        """The clip's speech: its loud frames (energy gate) +- `MARGIN_S`, within `VAD_MARGIN_S` of the VAD's
        speech. The gate alone keeps the noise before and after some recordings' words (VCTK, pocketsphinx),
        which the VAD calls a pause once the sentences are joined; the VAD alone clips soft word edges."""
        from voxrelay.engines.local.vad import WINDOW

        windows = np.flatnonzero(self._speech(clip.pcm))
        start, end = clip.speech_start - MARGIN_S, clip.speech_end + MARGIN_S
        if len(windows):
            start = max(start, windows[0] * WINDOW / RATE - VAD_MARGIN_S)
            end = min(end, (windows[-1] + 1) * WINDOW / RATE + VAD_MARGIN_S)
        return clip.pcm[max(0, int(start * RATE)) : int(end * RATE)]


def longest_inner_run(quiet: np.ndarray) -> int:
    """The longest run of True strictly between the first and the last False (pauses inside the speech)."""
    loud = np.flatnonzero(~quiet)
    if len(loud) < 2:
        return 0
    gaps = np.diff(loud) - 1  # quiet windows between consecutive loud ones
    return int(gaps.max())


def join_sentences(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Speech parts, each brought to the same peak level, joined with `GAP_S` of silence; `EDGE_S` at both ends."""
    gap, edge = np.zeros(int(GAP_S * RATE), np.float32), np.zeros(int(EDGE_S * RATE), np.float32)
    joined: list[np.ndarray] = [edge]
    for i, part in enumerate(parts):
        level = part.astype(np.float32) * (0.9 / max(float(np.abs(part).max()), 1e-6))
        joined += [gap, level] if i else [level]
    return np.concatenate([*joined, edge])


def check_long_clip(long: LongClip, meter: PauseMeter) -> LongClip:
    """The clip, if it has 5-20 s of speech and no pause of `MAX_PAUSE_S` inside; else ValueError."""
    if not MIN_SPEECH_S <= long.speech_s <= MAX_SPEECH_S:
        limits = f"{MIN_SPEECH_S:.0f}-{MAX_SPEECH_S:.0f}"
        raise ValueError(f"{long.clip.name}: {long.speech_s:.2f} s of speech, not {limits}")
    pause = meter.longest_pause_s(long.clip.trimmed())
    if pause >= MAX_PAUSE_S:
        raise ValueError(f"{long.clip.name}: a pause of {pause:.2f} s inside (limit {MAX_PAUSE_S} s)")
    return long


def build_long_set(corpus: Path, meter: PauseMeter | None = None, limit: int | None = None) -> list[LongClip]:
    """The development set from the corpus folder (`tests/fixtures/audio`): `SINGLES`, then `JOINS`.

    Deterministic: the same corpus gives the same samples. Raises ValueError if a clip breaks the rules.
    """
    meter = meter or PauseMeter()
    by_name = {c.name: c for c in load_clips(corpus, subsets=("real", "synth"))}
    out = [LongClip(by_name[name], "single", (name,)) for name in SINGLES]
    for i, names in enumerate(JOINS):
        parts = [by_name[n] for n in names]
        pcm = join_sentences([meter.sentence(p) for p in parts])
        start, end = speech_bounds(pcm)
        reference = " ".join(p.reference for p in parts)
        out.append(LongClip(Clip(f"joined_{i:02d}", reference, pcm, start, end), "joined", tuple(names)))
    return [check_long_clip(c, meter) for c in out[:limit]]


def load_report_set(folder: Path, limit: int | None = None) -> list[LongClip]:
    """Report-only clips from a folder with refs.tsv (any subset), used as they are, not checked."""
    clips = load_clips(folder, subsets=("real", "synth", "noisy"), limit=limit)
    return [LongClip(c, "report-only", (str(folder / c.name),)) for c in clips]
