"""Which upstream failures the deepgram engine retries, and what the client reads for the others. Pure."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response

from voxrelay.engines.deepgram import failures

KEY = "dg-secret-key"


def scrub(text: str) -> str:
    return text.replace(KEY, "[redacted]")


def closed(code: int | None, reason: str = "") -> ConnectionClosedError:
    return ConnectionClosedError(Close(code, reason) if code is not None else None, None)


def refused(status: int) -> InvalidStatus:
    return InvalidStatus(Response(status, "refused", Headers()))


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (closed(None), True),  # dropped without a close frame (1006)
        (closed(1011, "NET-0000: no answer"), True),
        (closed(1012), True),
        (closed(1013), True),
        (closed(4001), True),
        (closed(1008, "DATA-0000: bad audio"), False),
        (closed(1000), False),
        (refused(503), True),
        (refused(401), False),
        (refused(400), False),
        (ConnectionRefusedError(111, "refused"), True),
        (asyncio.TimeoutError(), True),
        (ValueError("bug"), False),
    ],
    ids=lambda x: type(x).__name__ if not isinstance(x, bool) else str(x),
)
def test_what_is_retried(exc: BaseException, retried: bool) -> None:
    assert failures.is_retryable(exc) is retried


def test_refusals_name_their_cause() -> None:
    assert failures.refused_status(refused(429)) == 429 and failures.refused_status(OSError()) is None
    key = failures.handshake_failure(refused(401), scrub, "ws://x")
    assert key.code == "engine_unavailable" and "DEEPGRAM_API_KEY" in str(key)
    assert failures.handshake_failure(refused(400), scrub, "ws://x").code == "bad_request"
    assert failures.handshake_failure(refused(402), scrub, "ws://x").code == "limit_exceeded"
    assert "HTTP 502" in str(failures.handshake_failure(refused(502), scrub, "ws://x"))
    unreachable = failures.handshake_failure(OSError(f"no route for {KEY}"), scrub, "ws://x")
    assert str(unreachable).startswith("cannot reach Deepgram") and KEY not in str(unreachable)


def test_an_ended_stream_gets_a_clear_error() -> None:
    assert "dropped" in failures.upstream_error(closed(None), scrub).message
    idle = failures.upstream_error(closed(1011, "NET-0001: no audio"), scrub)
    assert idle.code == "engine_error" and "no audio reached it in time" in idle.message
    assert "could not decode the audio" in failures.upstream_error(closed(1011, "NET-0000: x"), scrub).message
    assert failures.upstream_error(closed(1008, "DATA-0000: x"), scrub).code == "unsupported_audio"
    assert failures.upstream_error(closed(1003, f"no {KEY}"), scrub).message.endswith("(1003: no [redacted])")
    assert "not valid JSON" in failures.upstream_error(json.JSONDecodeError("x", "{", 0), scrub).message
    assert failures.upstream_error(closed(None), scrub).fatal


def test_describe_and_send_errors_hide_the_key() -> None:
    assert failures.describe(closed(None), scrub) == "connection dropped"
    assert failures.describe(closed(1012, KEY), scrub) == "closed 1012 [redacted]"
    assert failures.describe(asyncio.TimeoutError(), scrub) == "TimeoutError"
    stalled = failures.send_error(failures.Stalled("Deepgram stopped accepting data for 10 s"), scrub)
    assert stalled.message == "Deepgram stopped accepting data for 10 s" and stalled.fatal
    assert KEY not in failures.send_error(OSError(KEY), scrub).message
