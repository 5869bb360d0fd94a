"""engines/replay.py: retry policy, backoff, replay buffer, container headers. Pure."""

from __future__ import annotations

import random

from voxrelay.engines.deepgram.replay import HeaderCapture, ReplayBuffer, backoff_s, container_header, retryable


def test_retry_policy() -> None:
    assert all(retryable(c) for c in (None, 1006, 1011, 1012, 1013, 1014, 4000, 4999))
    assert not any(retryable(c) for c in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010))


def test_full_jitter_backoff_is_bounded() -> None:
    rng = random.Random(1)
    for attempt in range(10):
        delays = [backoff_s(attempt, 0.5, 10.0, rng) for _ in range(200)]
        assert all(0 <= d < min(10.0, 0.5 * 2**attempt) for d in delays)
    assert max(backoff_s(3, 0.5, 10.0, rng) for _ in range(200)) > 2.0  # it spreads over the window


def test_buffer_keeps_unacknowledged_audio_and_its_offset() -> None:
    buf = ReplayBuffer(bytes_per_s=32000, max_s=30, frame_bytes=2)
    for _ in range(10):
        buf.append(b"\1" * 3200)  # 1 s in 100 ms frames
    buf.acknowledge(0.5)
    assert buf.start == 16000 and buf.offset_s == 0.5 and len(buf.pending()) == 16000
    buf.acknowledge(0.30001)  # an older final changes nothing
    assert buf.start == 16000
    buf.acknowledge(0.55)  # mid-frame: cut on the 2-byte sample boundary
    assert buf.start == 17600 and len(buf) == 32000 - 17600
    buf.acknowledge(5.0)  # beyond what was sent
    assert len(buf) == 0 and buf.offset_s == 1.0


def test_buffer_drops_oldest_and_counts_it() -> None:
    buf = ReplayBuffer(bytes_per_s=1000, max_s=2)
    for i in range(5):
        buf.append(bytes([i]) * 1000)
    assert len(buf) == 2000 and buf.dropped_bytes == 3000
    assert buf.pending() == bytes([3]) * 1000 + bytes([4]) * 1000 and buf.offset_s == 3.0


def test_container_headers() -> None:
    webm = b"\x1a\x45\xdf\xa3" + b"header" + b"\x1f\x43\xb6\x75" + b"cluster"
    assert container_header(webm, "webm") == 10
    assert container_header(webm[:9], "webm") is None
    ogg = b"OggS-head" + b"OggS-tags" + b"OggS-audio"
    assert container_header(ogg, "ogg") == 18
    assert container_header(ogg[:17], "ogg") is None
    assert container_header(b"\0\0", "linear16") is None


def test_header_capture_finds_the_header_across_chunks() -> None:
    webm = b"\x1a\x45\xdf\xa3" + b"h" * 6 + b"\x1f\x43\xb6\x75" + b"cluster"
    capture = HeaderCapture("webm")
    for i in range(0, len(webm), 3):  # as the client's frames arrive
        capture.feed(webm[i : i + 3])
        if i + 3 <= 10:
            assert capture.header is None  # the header is known only once media follows it
    assert capture.header == webm[:10]
    capture.feed(b"more")
    assert capture.header == webm[:10]
