"""When a local stream asks for its next interim decode (pure: the stream feeds it what its segmenter saw).

Interims are asked for by need, not on a clock: after enough *new speech* since the last one, and
only while the VAD still hears speech. A pause may end in a final, which replaces the interim
anyway, and with one decode worker an interim running when that final (or a stop) comes delays it
by up to its own length. While a finalize or stop is on its way no interim is asked for at all.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InterimPacer"]

_EPS = 1e-6  # stream times are sums of float seconds: 0.2 s of speech must count as 0.2 s


@dataclass
class InterimPacer:
    """A stream's interim bookkeeping.

    Call order: `due(...)` after each batch of audio; when it says yes, decode and call
    `asked(speech_end)`; `answered()` when that decode is done (or withdrawn); `new_segment()`
    at every cut; `stop_coming()` when a finalize or stop is queued and `stop_handled()` once
    it has been handled.
    """

    interval_s: float  # new speech between interims once the segment has shown text
    # Speech before the first decode of a segment, and new speech before asking again while no decode of it had
    # text. 0.2 s (before issue 16) put the first interim at p50 ~500 ms after onset under load, 0.15 s ~390 ms,
    # with the same number of decodes before it (scripts/first_interim.py). 0.1 s alone was no sooner: about a
    # third of its first decodes have no text, and the retry waited another 0.15 s of speech. Asked after 0.1 s
    # and retried at the next frame of new speech (0.05 s), the first interim came p50 ~80 ms sooner, for ~0.3
    # more decodes before it (docs/benchmarks.md, "First interim").
    first_s: float = 0.1
    retry_s: float = 0.05
    in_flight: bool = False
    stops_pending: int = 0
    _asked_at: float = 0.0  # the segment's speech end when the last interim was asked for

    def due(self, *, speech_start: float, speech_end: float, hearing_speech: bool, shown_text: bool) -> bool:
        """Whether to ask for an interim now.

        Args:
            speech_start: stream time where the segment's speech began.
            speech_end: stream time where its newest speech window ends.
            hearing_speech: the newest VAD window was speech (no pause has begun).
            shown_text: an interim of this segment already had text.
        """
        if self.in_flight or self.stops_pending or not hearing_speech:
            return False
        if speech_end - speech_start < self.first_s - _EPS:
            return False
        return speech_end - self._asked_at >= (self.interval_s if shown_text else self.retry_s) - _EPS

    def asked(self, speech_end: float) -> None:
        self.in_flight = True
        self._asked_at = speech_end

    def answered(self) -> None:
        self.in_flight = False

    def new_segment(self) -> None:
        self._asked_at = 0.0

    def stop_coming(self) -> None:
        self.stops_pending += 1

    def stop_handled(self) -> None:
        self.stops_pending -= 1
