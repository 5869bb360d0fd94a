"""A live `/stt-stream` session: `async with connect(url) as stream`, send audio, iterate the server's messages.

The handshake carries the credentials the gateway accepts from programs (docs/security.md):
an API key as `Authorization: Bearer KEY`, or a short-lived token as the `bearer`
subprotocol. `connect` sends `configure` and waits for `ready`, so a refusal (a wrong key,
a busy or starting gateway, a bad option) raises before any audio is sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection

from voxrelay.client.audio import to_linear16
from voxrelay.client.errors import GatewayRefused, GatewayUnreachable, SessionError
from voxrelay.protocol.messages import (
    ErrorMessage,
    ProtocolError,
    Ready,
    ServerMessage,
    decode_server_text,
)

__all__ = ["DEFAULT_URL", "LINEAR16", "LiveStream", "connect", "stream_url"]

DEFAULT_URL = "ws://127.0.0.1:8765/stt-stream"
LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


def stream_url(url: str, *, batch: bool = False) -> str:
    """The `/stt-stream` WebSocket URL for `url`: http(s) becomes ws(s); a bare host gets the path."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path if parts.path not in ("", "/") else "/stt-stream"
    query = "&".join(q for q in (parts.query, "batch=true" if batch else "") if q)
    return urlunsplit((scheme, parts.netloc, path, query, ""))


class LiveStream:
    """One dictation session. Use it with `async with connect(...) as stream:`.

    `send` audio as `audio_format` declared (float32 samples are converted when it is
    linear16), `finalize` to commit what was heard, `stop` to end; `async for message in
    stream` yields the protocol's messages (`voxrelay.protocol.messages`) until the gateway
    closes. A fatal `error` raises `SessionError` with the server's code and message; a
    non-fatal one (the session goes on) is yielded as an `ErrorMessage`.
    """

    def __init__(self, socket: ClientConnection, ready: Ready, audio_format: dict[str, Any]) -> None:
        self._socket = socket
        self.ready = ready  # the gateway's `ready` message, which `connect` waited for
        self.session_id = ready.session_id
        self.engine = ready.engine
        self._linear16 = audio_format.get("encoding", "linear16") == "linear16"

    async def send(self, audio: bytes | np.ndarray) -> None:
        """Send one frame of audio (keep frames under the gateway's 64 KiB limit)."""
        if isinstance(audio, np.ndarray):
            if not self._linear16:
                raise TypeError("numpy samples can only be sent on a linear16 stream; send encoded bytes")
            audio = to_linear16(audio)
        await self._socket.send(audio)

    async def finalize(self) -> None:
        """Everything heard so far comes back as final now; the session goes on."""
        await self._socket.send('{"action":"finalize"}')

    async def stop(self) -> None:
        """End of audio: the remaining finals, then `stopped`, then the gateway closes."""
        await self._socket.send('{"action":"stop"}')

    async def close(self) -> None:
        await self._socket.close()

    def __aiter__(self) -> AsyncIterator[ServerMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[ServerMessage]:
        # An error is held until the next frame shows whether the session goes on (fatal
        # errors are followed by a close other than 1000; docs/protocol.md).
        held: ErrorMessage | None = None
        async for message in _server_messages(self._socket):
            if held is not None:
                yield held
                held = None
            if isinstance(message, ErrorMessage):
                held = message
                continue
            yield message
        code, reason = self._socket.close_code, self._socket.close_reason or ""
        if code in (1000, None):
            if held is not None:
                yield held
            return
        if held is not None:
            raise SessionError(held.code, held.message, code)
        raise SessionError("closed", f"the gateway closed the session ({code} {reason})".strip(), code)


class connect:  # lower case: used as a function, `async with connect(url) as stream`
    """Open a live session: `async with connect(url, api_key=KEY, language="en") as stream: ...`.

    `options` are the `configure` options of docs/protocol.md (`interim_results`,
    `endpointing`, `keyterms`, `language`, `punctuate`, ...). `batch=True` asks for audio
    faster than real time (`?batch=true`, for holders of an API key).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        api_key: str | None = None,
        token: str | None = None,
        audio_format: dict[str, Any] | None = None,
        batch: bool = False,
        open_timeout: float = 30.0,
        **options: Any,
    ) -> None:
        self._url = stream_url(url, batch=batch)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._subprotocols = ["bearer", token] if token else None
        self._audio_format = dict(audio_format or LINEAR16)
        self._options = options
        self._open_timeout = open_timeout
        self._stream: LiveStream | None = None

    async def __aenter__(self) -> LiveStream:
        self._stream = await self._open()
        return self._stream

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.close()

    async def _open(self) -> LiveStream:
        try:
            socket = await websockets.connect(
                self._url,
                additional_headers=self._headers,
                subprotocols=self._subprotocols,  # type: ignore[arg-type]
                open_timeout=self._open_timeout,
                max_size=None,
                compression=None,  # the gateway offers none for audio; say so up front
            )
        except websockets.InvalidStatus as exc:
            raise _refused(exc) from None
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise GatewayUnreachable(self._url, _reason(exc)) from None
        try:
            configure = {"action": "configure", "audio_format": self._audio_format, **self._options}
            await socket.send(json.dumps(configure))
            ready = await _first_ready(socket)
        except BaseException:
            await socket.close()
            raise
        return LiveStream(socket, ready, self._audio_format)


async def _server_messages(socket: ClientConnection) -> AsyncIterator[ServerMessage]:
    try:
        async for raw in socket:
            if isinstance(raw, bytes):
                continue  # the protocol has no binary server frames
            try:
                message = decode_server_text(raw)
            except ProtocolError as exc:
                raise SessionError("bad_response", exc.message) from None
            if message is not None:
                yield message
    except websockets.ConnectionClosedError:
        return


async def _first_ready(socket: ClientConnection) -> Ready:
    error: ErrorMessage | None = None
    async for message in _server_messages(socket):
        if isinstance(message, Ready):
            return message
        if isinstance(message, ErrorMessage):
            error = message
    code = socket.close_code
    if error is not None:
        raise SessionError(error.code, error.message, code)
    raise SessionError("closed", f"the gateway closed the session before it was ready ({code})", code)


def _refused(exc: websockets.InvalidStatus) -> GatewayRefused:
    response = exc.response
    code, message = "refused", response.reason_phrase or "refused"
    try:
        body = json.loads(response.body or b"")
        code, message = str(body.get("error", code)), str(body.get("message", message))
    except (ValueError, AttributeError):
        pass
    retry = response.headers.get("Retry-After")
    return GatewayRefused(response.status_code, code, message, float(retry) if retry else None)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
