"""Upstream failures -> what the stream does and what the client reads.

The stream's task asks, for every exception a connection ends with:
`is_retryable(exc)` (reconnect, or give up), `describe(exc)` (the short cause in a
`reconnecting` warning), and for failures that reach the client `handshake_failure`
(the connect was refused or failed: an `EngineFailure`) or `upstream_error` (an open
stream ended: an `EngineError`). Every message passes through the engine's `scrub`, so
the API key never reaches a client or a log.

Which closes are retried is `replay.retryable`: 1006 (dropped), 1011-1014 and 4000-4999;
1008 (DATA-0000, a bad key) and the rest are fatal.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import websockets.exceptions

from voxrelay.engines.base import EngineError, EngineFailure
from voxrelay.engines.deepgram.replay import retryable

__all__ = ["Stalled", "describe", "handshake_failure", "is_retryable", "refused_status", "send_error", "upstream_error"]

log = logging.getLogger(__name__)

Scrub = Callable[[str], str]


class Stalled(Exception):
    """The upstream stopped reading (TCP backpressure): a send did not complete in time."""


def refused_status(exc: BaseException) -> int | None:
    """The HTTP status of a refused handshake, else None.

    The transport opens the socket, so a refusal is websockets' `InvalidStatus`: the SDK
    maps only its legacy client's refusals to `ApiError`, and those no longer happen.
    """
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return int(exc.response.status_code)
    return None


def is_retryable(exc: BaseException) -> bool:
    """Whether a connection that ended with `exc` is worth a reconnect."""
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return retryable(exc.rcvd.code if exc.rcvd is not None else None)
    status = refused_status(exc)
    if status is not None:
        return status in (500, 502, 503, 504)
    return isinstance(exc, (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake))


def describe(exc: BaseException, scrub: Scrub) -> str:
    """A few words on why a connection ended (for the `reconnecting` warning and logs)."""
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        if exc.rcvd is None:
            return "connection dropped"
        return scrub(f"closed {exc.rcvd.code} {exc.rcvd.reason}".strip())
    return scrub(type(exc).__name__)


def handshake_failure(exc: BaseException, scrub: Scrub, where: str) -> EngineFailure:
    """The `EngineFailure` for a connect that failed (`where`: the upstream URL, for the log only)."""
    status = refused_status(exc)
    if status is not None:
        if status in (401, 403):
            message = f"Deepgram refused the server's API key (HTTP {status}); check DEEPGRAM_API_KEY"
            return EngineFailure(message, code="engine_unavailable")
        if status == 400:
            return EngineFailure(
                "Deepgram refused the stream options (HTTP 400); check model, language and audio format",
                code="bad_request",
            )
        if status in (402, 429):
            message = f"Deepgram refused the stream: limit or quota reached (HTTP {status})"
            return EngineFailure(message, code="limit_exceeded")
        return EngineFailure(f"Deepgram refused the connection (HTTP {status})", code="engine_unavailable")
    if isinstance(exc, OSError):
        log.warning("cannot reach Deepgram at %s: %s", where, scrub(str(exc)))
        return EngineFailure(f"cannot reach Deepgram: {scrub(str(exc)) or type(exc).__name__}")
    log.warning("Deepgram handshake failed: %s", scrub(repr(exc)))
    return EngineFailure(f"could not open a Deepgram stream: {scrub(str(exc)) or type(exc).__name__}")


def upstream_error(exc: BaseException, scrub: Scrub) -> EngineError:
    """The fatal `EngineError` for an open stream that ended with `exc` and is not retried."""
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        received = exc.rcvd
        if received is None:
            return EngineError("engine_error", "the connection to Deepgram dropped; the last words may be lost")
        code, reason = received.code, scrub(received.reason)
        if reason.startswith("NET-0001"):
            return EngineError("engine_error", f"Deepgram closed the stream: no audio reached it in time ({reason})")
        if reason.startswith("NET-0000"):
            return EngineError(
                "engine_error",
                f"Deepgram stopped answering and closed the stream ({reason}); "
                "this often means it could not decode the audio",
            )
        if reason.startswith("DATA-"):
            return EngineError("unsupported_audio", f"Deepgram could not decode the audio ({reason})")
        return EngineError("engine_error", f"Deepgram closed the stream ({code}{': ' + reason if reason else ''})")
    if isinstance(exc, json.JSONDecodeError):
        return EngineError("engine_error", "Deepgram sent a message that is not valid JSON; the stream was closed")
    return EngineError("engine_error", scrub(f"the Deepgram stream failed: {type(exc).__name__}: {exc}"))


def send_error(exc: BaseException, scrub: Scrub) -> EngineError:
    """The fatal `EngineError` for a send that failed (`Stalled`: the upstream stopped reading)."""
    log.warning("deepgram send failed: %s", scrub(repr(exc)))
    message = str(exc) if isinstance(exc, Stalled) else f"sending to Deepgram failed: {exc}"
    return EngineError("engine_error", scrub(message))
