"""What an engine needs to survive an upstream drop: retry policy, a replay buffer, timestamp realignment. Pure.

- `retryable(code)`: 1006 (dropped), 1011, 1012, 1013, 1014 and 4000-4999 are retried;
  1000-1003, 1007, 1008 (bad key) and the rest go to the client as errors.
- `backoff_s(attempt, base, cap, rng)`: full jitter, uniform in [0, min(cap, base * 2**attempt)).
- `ReplayBuffer`: the audio sent since the last final, at most `max_s` seconds (drop-oldest,
  counted in `dropped_bytes`). After a reconnect, the engine re-sends `pending()` and adds
  `offset_s` to every timestamp of the new connection, so they stay in session time.
- `container_header(data, encoding)`: the length of a webm/ogg header (re-sent first on a
  new connection, since the stream is unreadable without it), or None until it is complete;
  `HeaderCapture` feeds it a stream's first audio until it knows the header.
"""

from __future__ import annotations

import random
from collections import deque

__all__ = ["HeaderCapture", "ReplayBuffer", "backoff_s", "container_header", "retryable"]

_RETRYABLE = {1006, 1011, 1012, 1013, 1014}
_WEBM_CLUSTER = b"\x1f\x43\xb6\x75"


def retryable(code: int | None) -> bool:
    """Whether an upstream close code (None = dropped without a close frame) is worth a reconnect."""
    return code is None or code in _RETRYABLE or 4000 <= code <= 4999


def backoff_s(attempt: int, base: float = 0.5, cap: float = 10.0, rng: random.Random | None = None) -> float:
    """Full-jitter delay before reconnect `attempt` (0-based)."""
    return (rng or random).uniform(0.0, min(cap, base * (2**attempt)))


def container_header(data: bytes, encoding: str) -> int | None:
    """Bytes of `data` that form the container header, once the first media data follows it."""
    if encoding == "webm":
        at = data.find(_WEBM_CLUSTER)
        return at if at > 0 else None
    if encoding == "ogg":  # OpusHead and OpusTags pages; audio starts on the third page
        at = -1
        for _ in range(3):
            at = data.find(b"OggS", at + 1)
            if at < 0:
                return None
        return at
    return None


class ReplayBuffer:
    """Audio sent upstream and not yet covered by a final, in session byte offsets.

    Args:
        bytes_per_s: the audio's byte rate (linear16); containers use a nominal rate.
        max_s: keep at most this many seconds (older audio is dropped and counted).
    """

    def __init__(self, bytes_per_s: int, max_s: float = 30.0, frame_bytes: int = 1) -> None:
        self.bytes_per_s = bytes_per_s
        self.frame_bytes = frame_bytes  # replay starts on a sample frame (linear16: 2 x channels)
        self.max_bytes = int(bytes_per_s * max_s)
        self.sent_bytes = 0  # session offset of the end of the buffer
        self.dropped_bytes = 0  # audio that fell out of the buffer before a final covered it
        self._chunks: deque[bytes] = deque()
        self._size = 0

    @property
    def start(self) -> int:
        """Session byte offset of the first buffered byte."""
        return self.sent_bytes - self._size

    @property
    def offset_s(self) -> float:
        """Session time of the first buffered byte: add it to a new connection's timestamps."""
        return self.start / self.bytes_per_s

    def __len__(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        self.sent_bytes += len(data)
        while self._size > self.max_bytes and self._chunks:
            excess = self._size - self.max_bytes
            head = self._chunks[0]
            if len(head) <= excess:
                self._chunks.popleft()
                self._size -= len(head)
                self.dropped_bytes += len(head)
            else:
                self._chunks[0] = head[excess:]
                self._size -= excess
                self.dropped_bytes += excess

    def acknowledge(self, until_s: float) -> None:
        """A final covered the audio up to session time `until_s`: forget it."""
        until = min(round(until_s * self.bytes_per_s), self.sent_bytes)
        until -= until % self.frame_bytes
        drop = until - self.start
        while drop > 0 and self._chunks:
            head = self._chunks[0]
            if len(head) <= drop:
                self._chunks.popleft()
                self._size -= len(head)
                drop -= len(head)
            else:
                self._chunks[0] = head[drop:]
                self._size -= drop
                drop = 0

    def pending(self) -> bytes:
        return b"".join(self._chunks)

    def chunks(self) -> list[bytes]:
        """The buffered audio as it was sent (frame by frame), for a replay."""
        return list(self._chunks)


class HeaderCapture:
    """A webm/ogg stream's container header, from its first audio: `feed` every chunk sent, read `header`."""

    _LIMIT = 1 << 20  # a header is far smaller: past this, give up looking

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._head = bytearray()
        self.header: bytes | None = None  # None until complete

    def feed(self, audio: bytes) -> None:
        if self.header is None and len(self._head) < self._LIMIT:
            self._head += audio
            size = container_header(bytes(self._head), self._encoding)
            if size is not None:
                self.header = bytes(self._head[:size])
                self._head = bytearray()
