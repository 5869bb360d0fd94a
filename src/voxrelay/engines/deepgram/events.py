"""Deepgram's Live JSON messages -> voxrelay engine events. Pure: no I/O, no SDK.

The stream's reader calls `engine_event` for every upstream text frame, then `shifted`
to move the event into session time after a reconnect:

    event = engine_event(data.get("type"), data, with_words)   # None: Metadata, Error, unknown
    if event is not None:
        emit(shifted(event, offset_s))

The JSON is read directly rather than through the SDK's pydantic models: building those
for every message cost about a quarter of the gateway's CPU at a few hundred proxied
streams (docs/benchmarks.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from voxrelay.engines.base import EngineEvent, FinalResult, InterimResult, SpeechStarted, UtteranceEnd, Word

__all__ = ["engine_event", "error_text", "shifted"]


def engine_event(kind: str | None, data: dict[str, Any], with_words: bool = True) -> EngineEvent | None:
    """The engine event for an upstream message, or None for messages that map to none.

    Args:
        kind: the message's `type` (Results, SpeechStarted, UtteranceEnd, Metadata, ...).
        data: the whole decoded message.
        with_words: map `words` (streams opened with `word_timings`); else results carry none.

    Raises:
        KeyError, TypeError, ValueError, IndexError: a malformed message (the reader logs and skips it).
    """
    if kind == "Results":
        alternatives = data["channel"]["alternatives"]
        best = alternatives[0] if alternatives else {}
        words = _words(best.get("words")) if with_words else ()  # no generator per result without words
        start = float(data["start"])
        end = start + float(data["duration"])
        transcript = best.get("transcript") or ""
        confidence = float(best.get("confidence") or 0.0)
        if data.get("is_final"):
            return FinalResult(
                transcript,
                start,
                end,
                speech_final=bool(data.get("speech_final")),
                from_finalize=bool(data.get("from_finalize")),
                confidence=confidence,
                words=words,
            )
        return InterimResult(transcript, start, end, confidence, words)
    if kind == "SpeechStarted":
        return SpeechStarted(float(data["timestamp"]))
    if kind == "UtteranceEnd":
        return UtteranceEnd(float(data["last_word_end"]))
    return None


def _words(raw: list[dict[str, Any]] | None) -> tuple[Word, ...]:
    return tuple(
        Word(
            w["word"],
            float(w["start"]),
            float(w["end"]),
            float(w.get("confidence") or 0.0),
            w.get("punctuated_word") or w["word"],
        )
        for w in raw or ()
    )


def error_text(data: dict[str, Any]) -> str:
    """What an upstream `Error` message says, for the client (scrub it before it leaves the engine)."""
    return f"Deepgram reported an error: {data.get('description') or data.get('message')}"


def shifted(event: EngineEvent, offset_s: float) -> EngineEvent:
    """`event` with its timestamps moved by `offset_s` (a reconnected connection's t=0 in session time)."""
    if not offset_s:
        return event
    if isinstance(event, (FinalResult, InterimResult)):
        words = tuple(dataclasses.replace(w, start=w.start + offset_s, end=w.end + offset_s) for w in event.words)
        return dataclasses.replace(event, start=event.start + offset_s, end=event.end + offset_s, words=words)
    if isinstance(event, SpeechStarted):
        return SpeechStarted(event.timestamp + offset_s)
    if isinstance(event, UtteranceEnd):
        return UtteranceEnd(event.last_word_end + offset_s)
    return event
