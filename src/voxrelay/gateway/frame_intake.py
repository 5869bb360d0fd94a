"""One client frame through the session's limits into its codec: the read loop's per-frame work. No I/O.

The connection runner reads an ASGI message and calls `take_frame`; it then runs the
codec's actions, and the limit breached (if any) ends the session in the endpoint's wire
form. Limits come first, always: a frame past one never reaches the codec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voxrelay.protocol.codec import Codec
from voxrelay.security.limits import Breach, SessionLimiter

__all__ = ["take_frame"]


def take_frame(message: Mapping[str, Any], codec: Codec, limiter: SessionLimiter, now: float) -> Breach | None:
    """Check a `websocket.receive` message against the limits and hand it to the codec.

    A binary frame is audio. A text frame is a message, unless the protocol carries audio
    inside it (OpenAI Realtime's base64 appends): the codec's `receive_text` hands that
    audio back, and it is checked as audio (its decoded size, its bytes against the byte
    rate) before `receive_audio` takes it. A message with neither is ignored.

    Returns:
        The limit the frame went past, or None.
    """
    data = message.get("bytes")
    if data is not None:
        breach = limiter.on_frame(binary=True, nbytes=len(data), now=now)
        if breach is None:
            codec.receive_audio(data)
        return breach
    text = message.get("text")
    if text is None:
        return None
    breach = limiter.on_frame(binary=False, nbytes=len(text.encode()), now=now)
    carried = codec.receive_text(text) if breach is None else None
    if carried is not None:
        breach = limiter.on_frame(binary=True, nbytes=len(carried), now=now)
        if breach is None:
            codec.receive_audio(carried)
    return breach
