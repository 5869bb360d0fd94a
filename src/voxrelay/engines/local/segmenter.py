"""Cutting a stream into utterance segments with VAD probabilities (pure, no model).

The local engine decodes only audio that the VAD called speech, one segment at a
time, so finals never overlap (segments are disjoint by construction) and silence
or noise is never fed to Whisper (which is where "Thank you." hallucinations come
from). `Segmenter` holds the audio of the current segment and reports what to do
after each batch of VAD windows: nothing, start of speech, or an endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxrelay.engines.local.vad import WINDOW

__all__ = ["Cut", "SegmenterConfig", "Segmenter"]


@dataclass(frozen=True, slots=True)
class SegmenterConfig:
    sample_rate: int = 16000
    speech_threshold: float = 0.5  # a window at or above this starts speech
    keep_threshold: float = 0.35  # once speaking, windows above this still count as speech
    endpointing_ms: int = 300  # silence that ends an utterance
    pre_roll_ms: int = 300  # audio kept before the first speech window
    post_roll_ms: int = 200  # audio kept after the last speech window in a final
    max_segment_s: float = 6.0  # a longer utterance is cut at its quietest point (of its last 3 s)
    min_speech_ms: int = 64  # shorter blips are not speech (clicks, breaths)


@dataclass(frozen=True, slots=True)
class Cut:
    """A finished segment to decode as final."""

    audio: np.ndarray
    start: float  # stream time of audio[0]
    speech_start: float
    speech_end: float
    speech_final: bool  # an utterance ended (endpoint, finalize, stop), not a length cut


class _Buffer:
    """A growable float32 array (amortised O(1) appends)."""

    def __init__(self) -> None:
        self._data = np.zeros(16000 * 4, dtype=np.float32)
        self.size = 0

    def append(self, samples: np.ndarray) -> None:
        needed = self.size + len(samples)
        if needed > len(self._data):
            grown = np.zeros(max(needed, 2 * len(self._data)), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : needed] = samples
        self.size = needed

    def view(self, start: int = 0, end: int | None = None) -> np.ndarray:
        return self._data[start : self.size if end is None else min(end, self.size)]

    def drop_front(self, n: int) -> None:
        n = min(n, self.size)
        self._data[: self.size - n] = self._data[n : self.size]
        self.size -= n


class Segmenter:
    """The current segment's audio plus the VAD bookkeeping around it.

    Call order: `add_audio(samples)` as audio arrives; `add_probabilities(probs)` with the
    VAD result for the windows scored so far, which returns a `Cut` when an endpoint or a
    length cut happened (and `speech_started` is set when speech began); `cut_now()` for
    finalize/stop.
    """

    def __init__(self, config: SegmenterConfig) -> None:
        self.config = config
        self._rate = config.sample_rate
        self._audio = _Buffer()
        self._origin = 0  # stream sample index of self._audio[0]
        self._scored = 0  # stream samples already scored by the VAD
        self._speech_start: int | None = None  # stream sample of the first speech window
        self._speech_end = 0  # stream sample after the last speech window
        self._speech_windows = 0
        self._silence = 0  # samples of non-speech since the last speech window
        self._window_probs: list[float] = []  # per window of the current segment, for length cuts
        self.speech_started: float | None = None  # set when a segment's speech begins; caller clears

    # Public methods.

    @property
    def in_speech(self) -> bool:
        """True once the current segment holds speech (decodes make sense)."""
        return self._speech_start is not None and self._speech_windows * WINDOW >= self._min_speech

    @property
    def end_time(self) -> float:
        """Stream time of the last sample received."""
        return (self._origin + self._audio.size) / self._rate

    @property
    def speech_start_time(self) -> float:
        """Stream time where the current segment's speech began (its start if none yet)."""
        start = self._speech_start if self._speech_start is not None else self._origin
        return max(start, self._origin) / self._rate

    @property
    def last_speech_end(self) -> float:
        return self._speech_end / self._rate

    @property
    def hearing_speech(self) -> bool:
        """True while the newest VAD window of a segment with speech was speech (no pause has begun)."""
        return self.in_speech and self._silence == 0

    def add_audio(self, samples: np.ndarray) -> None:
        self._audio.append(samples)

    def segment_audio(self) -> tuple[np.ndarray, float]:
        """A copy of the current segment's audio and the stream time of its first sample."""
        return self._audio.view().copy(), self._origin / self._rate

    def add_probabilities(self, probs: np.ndarray) -> Cut | None:
        """Account for the next VAD windows; returns the segment to finalize, if any."""
        cfg = self.config
        cut: Cut | None = None
        for p in probs:
            window_start = self._scored
            self._scored += WINDOW
            speaking = self._speech_start is not None
            if p >= cfg.speech_threshold or (speaking and p >= cfg.keep_threshold):
                if self._speech_start is None:
                    self._speech_start = window_start
                    self._speech_windows = 0
                self._speech_windows += 1
                self._speech_end = self._scored
                self._silence = 0
                if self._speech_windows * WINDOW == max(self._min_speech, WINDOW):
                    self.speech_started = self._speech_start / self._rate
            elif speaking:
                self._silence += WINDOW
                if self._silence >= cfg.endpointing_ms * self._rate // 1000:
                    if self.in_speech:
                        cut = self._cut(self._speech_end + self._post_roll, speech_final=True) or cut
                    else:
                        self._forget_blip()
            self._window_probs.append(float(p))
            if self._speech_start is None:
                self._trim_pre_roll()
            elif self.in_speech and self._audio.size >= cfg.max_segment_s * self._rate:
                cut = self._length_cut() or cut
        return cut

    def endpoint_audio(self) -> tuple[np.ndarray, float] | None:
        """The audio an endpoint would cut, and the stream time of its first sample, while a pause is on.

        An endpoint cut takes the segment up to `post_roll_ms` after the last speech window. Once the pause has
        lasted that long that audio is all here and cannot change unless speech resumes (or a length cut comes
        first), so it can be decoded before the endpoint; None before that, after it, and without speech.
        """
        endpoint = self.config.endpointing_ms * self._rate // 1000
        if not self.in_speech or not self._post_roll <= self._silence < endpoint:
            return None
        n = min(self._speech_end + self._post_roll, self._origin + self._audio.size) - self._origin
        if n <= 0:
            return None
        return self._audio.view(0, n).copy(), self._origin / self._rate

    def cut_between(self, earliest: float, latest: float) -> Cut | None:
        """Cut the utterance while it goes on (`speech_final` false), in the middle of its quietest scored
        VAD window that starts between the stream times `earliest` and `latest` (at `latest` if none does).

        Returns None (no cut) when the segment holds no speech or the boundary is not inside its scored audio.
        """
        if not self.in_speech:
            return None
        first = int(earliest * self._rate) - self._origin
        last = int(latest * self._rate) - self._origin
        scored = len(self._window_probs)
        base = self._scored - self._origin - scored * WINDOW  # segment sample of _window_probs[0]
        lo, hi = max(0, -(-(first - base) // WINDOW)), min(scored, (last - base) // WINDOW + 1)
        if lo < hi:
            quietest = lo + int(np.argmin(self._window_probs[lo:hi]))
            boundary = self._origin + base + quietest * WINDOW + WINDOW // 2
        else:
            boundary = self._origin + last
        if not self._origin < boundary < self._scored:
            return None
        return self._split(boundary)

    def cut_now(self) -> Cut | None:
        """Finalize or stop: the whole segment as final if it holds any speech."""
        if self._speech_start is None:
            self._trim_pre_roll()
            return None
        return self._cut(self._origin + self._audio.size, speech_final=True, force=True)

    # Private helpers.

    @property
    def _min_speech(self) -> int:
        return self.config.min_speech_ms * self._rate // 1000

    @property
    def _post_roll(self) -> int:
        return self.config.post_roll_ms * self._rate // 1000

    def _trim_pre_roll(self) -> None:
        keep = self.config.pre_roll_ms * self._rate // 1000
        # Never trim audio the VAD has not scored yet.
        excess = min(self._audio.size - keep, self._scored - self._origin - keep)
        if excess > 0:
            self._audio.drop_front(excess)
            self._origin += excess
            del self._window_probs[: max(0, len(self._window_probs) - keep // WINDOW - 1)]

    def _forget_blip(self) -> None:
        self._speech_start = None
        self._speech_windows = 0
        self._silence = 0

    def _length_cut(self) -> Cut | None:
        # Cut at the quietest window of the last 3 s, so a word is rarely split.
        span = int(3 * self._rate // WINDOW)
        probs = self._window_probs[-span:]
        quietest = len(self._window_probs) - len(probs) + int(np.argmin(probs))
        boundary = self._scored - (len(self._window_probs) - quietest - 1) * WINDOW
        return self._split(boundary)

    def _split(self, boundary: int) -> Cut | None:
        cut = self._cut(boundary, speech_final=False, force=True)
        if cut is not None:
            # The utterance goes on after a length cut.
            self._speech_start = self._origin
            self._speech_windows = max(1, (self._scored - self._origin) // WINDOW)
            self.speech_started = None
        return cut

    def _cut(self, boundary: int, *, speech_final: bool, force: bool = False) -> Cut | None:
        boundary = max(self._origin, min(boundary, self._origin + self._audio.size))
        n = boundary - self._origin
        if self._speech_start is None or (n <= 0 and not force):
            return None
        audio = self._audio.view(0, n).copy()
        start = self._origin / self._rate
        speech_start = max(self._speech_start, self._origin) / self._rate
        speech_end = min(max(self._speech_end, self._speech_start), boundary) / self._rate
        self._audio.drop_front(n)
        self._origin = boundary
        self._speech_start = None
        self._speech_windows = 0
        self._silence = 0
        if self._scored > boundary:
            self._window_probs = self._window_probs[-max(0, (self._scored - boundary) // WINDOW) :]
        else:
            self._window_probs = []
        if len(audio) == 0:
            return None
        return Cut(audio, start, speech_start, speech_end, speech_final)
