"""One live session's metering, as the connection runner drives it: audio in, quota notices out."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from voxrelay.engines.base import Engine
from voxrelay.usage.meter import LiveSession, Meter

__all__ = ["QuotaNotice", "SessionUsage", "usage_outcome"]


@dataclass(frozen=True, slots=True)
class QuotaNotice:
    """What the session must tell its client: the 90 % warning, or the end at 100 %."""

    kind: Literal["warning", "exceeded"]
    message: str


class SessionUsage:
    """A session's row in the meter: `update` after audio reached the engine, `end` once, at the close."""

    def __init__(self, meter: Meter, session_id: str, key: str | None, endpoint: str, engine: Engine) -> None:
        self.meter = meter
        self.live: LiveSession = meter.open(session_id, key, endpoint, engine.name, engine.model_name)
        self.quota_hit = False

    @property
    def key(self) -> str:
        return self.live.key

    def set_model(self, model: str) -> None:
        """The session asked for a model of its own."""
        self.live.record = replace(self.live.record, model=model)

    def update(self, audio_seconds: float) -> QuotaNotice | None:
        """The session has received `audio_seconds` in all (an in-memory sum, no I/O)."""
        state = self.meter.add(self.live, audio_seconds)
        if state == "ok":
            return None
        key, quota = self.key, self.meter.quota(self.key)
        if state == "warning":
            share = self.meter.used(key) / quota
            return QuotaNotice("warning", f"{key} has used {share:.0%} of its monthly audio quota ({quota:g} s)")
        self.quota_hit = True
        return QuotaNotice("exceeded", f"{key} has used its monthly audio quota ({quota:g} s); it renews on the 1st "
                                       "(UTC)")

    def end(self, audio_seconds: float, outcome: str) -> None:
        self.meter.add(self.live, audio_seconds)
        self.meter.close(self.live, "quota" if self.quota_hit else outcome)


def usage_outcome(closed_as: str, *, drained: bool, error_code: str | None) -> str:
    """A usage record's outcome from how the runner saw the close (`stopped`, `disconnected`, `error`):
    normal, drained, client_gone, or the error code sent."""
    if closed_as == "stopped":
        return "drained" if drained else "normal"
    if closed_as == "disconnected":
        return "client_gone"
    return error_code or "error"
