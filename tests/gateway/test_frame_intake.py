"""One client frame through the limits into the codec (`take_frame`): limits first, audio in text frames too."""

from __future__ import annotations

from typing import Any, cast

from voxrelay.gateway.frame_intake import take_frame as _take_frame
from voxrelay.protocol.codec import Codec
from voxrelay.security.limits import FrameLimits, SessionGuard, SessionLimiter


class _Codec:
    """Records what reaches it; `receive_text` hands back `carried` (audio inside a text frame)."""

    closed = False
    accepting_input = True
    audio_bytes = 0

    def __init__(self, carried: bytes | None = None) -> None:
        self.carried = carried
        self.audio: list[bytes] = []
        self.texts: list[str] = []

    def receive_text(self, text: str) -> bytes | None:
        self.texts.append(text)
        return self.carried

    def receive_audio(self, data: bytes) -> None:
        self.audio.append(data)


def take_frame(message: dict[str, Any], codec: _Codec, limiter: SessionLimiter, now: float) -> Any:
    return _take_frame(message, cast(Codec, codec), limiter, now)


def _limiter(max_audio: int = 100, rate_limited: bool = False) -> SessionLimiter:
    guard = SessionGuard(0.0, factor=1.0, burst_s=0.0)
    limiter = SessionLimiter(FrameLimits(max_text_frame=50, max_audio_frame=max_audio), guard,
                             rate_limited=rate_limited, max_duration_s=60.0)
    limiter.declare(10)
    return limiter


def test_audio_within_the_limits_reaches_the_codec() -> None:
    codec = _Codec()
    assert take_frame({"type": "websocket.receive", "bytes": b"ab"}, codec, _limiter(), 1.0) is None
    assert codec.audio == [b"ab"]


def test_a_frame_past_a_limit_never_reaches_the_codec() -> None:
    codec = _Codec()
    too_big = take_frame({"bytes": b"x" * 101}, codec, _limiter(), 1.0)
    too_long = take_frame({"text": "y" * 51}, codec, _limiter(), 1.0)
    too_fast = take_frame({"bytes": b"x" * 50}, codec, _limiter(rate_limited=True), 1.0)
    assert [b.kind for b in (too_big, too_long, too_fast) if b] == ["frame_size", "frame_size", "byte_rate"]
    assert codec.audio == [] and codec.texts == []


def test_audio_inside_a_text_frame_is_checked_as_audio() -> None:
    small, big = _Codec(carried=b"pcm"), _Codec(carried=b"x" * 101)
    assert take_frame({"text": '{"append": "cGNt"}'}, small, _limiter(), 1.0) is None
    breach = take_frame({"text": '{"append": "..."}'}, big, _limiter(), 1.0)
    assert small.audio == [b"pcm"] and big.audio == [] and breach is not None and breach.kind == "frame_size"


def test_a_message_with_neither_bytes_nor_text_is_ignored() -> None:
    codec = _Codec()
    assert take_frame({"type": "websocket.receive"}, codec, _limiter(), 1.0) is None
    assert codec.audio == [] and codec.texts == []
