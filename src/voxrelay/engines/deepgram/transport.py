"""The deepgram engine's WebSocket transport, plugged into deepgram-sdk's `transport_factory` hook.

deepgram-sdk 7.x builds a Live connection's URL and headers, then hands them to a
transport: by default websockets' legacy client, which offers permessage-deflate with no
option against it and costs more per message than websockets' asyncio client. A relay
pays that on every message, so the engine gives the SDK this one instead:

- websockets' asyncio client, without permessage-deflate: deflate keeps ~84 % of linear16
  speech bytes (Opus and webm do not shrink at all) and cost ~18 % of the gateway's CPU,
  plus a zlib context per connection (docs/deepgram.md, docs/benchmarks.md);
- it honours HTTPS_PROXY/ALL_PROXY from the environment, as websockets does.

The hook builds a transport synchronously and connects nothing, so `open()` connects:
anyone using the SDK in the process (the hook is global) gets it opened on first use,
once even when a reader and a sender ask together. A task that sets `claim_transport`
receives every transport made in it: that is how the engine reads the URL and headers
the SDK built for a stream's options (once per distinct options, `DeepgramEngine.upstream_target`);
its streams then make their own transports from them and call `open()` themselves (a
refused handshake fails the stream's connect, not a later send).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

import websockets.asyncio.client
from websockets.asyncio.client import ClientConnection

__all__ = ["ControlTexts", "WebSocketTransport", "claim_transport"]

claim_transport: contextvars.ContextVar[Callable[[WebSocketTransport], None] | None] = contextvars.ContextVar(
    "claim_transport", default=None
)


@dataclass(frozen=True, slots=True)
class ControlTexts:
    """The JSON text of Deepgram's Finalize, CloseStream and KeepAlive (built once from the SDK's models)."""

    finalize: str
    close_stream: str
    keep_alive: str


class WebSocketTransport:
    """deepgram-sdk's `AsyncTransport` protocol: `send`, `recv`, async iteration, `close`.

    Args:
        url: the `wss://…/v1/listen?…` URL the SDK built from the stream's options.
        headers: the SDK's headers (Authorization among them: never logged here).
        proxy: as websockets' `connect`: True = from the environment (HTTPS_PROXY, NO_PROXY...),
            else the proxy's URL, or None for none. The engine resolves it once: websockets
            reading the environment at every connect was ~7 % of a connect storm's CPU.
    """

    def __init__(self, url: str, headers: dict[str, str], proxy: str | Literal[True] | None = True) -> None:
        self.url = url
        self.headers = dict(headers)
        self._proxy = proxy
        self.ws: ClientConnection | None = None
        self._connecting: asyncio.Future[ClientConnection] | None = None
        claimer = claim_transport.get()
        if claimer is not None:
            claimer(self)

    async def open(self, timeout: float = 10.0) -> ClientConnection:
        """Connect, once: callers arriving during the handshake share it.

        Raises:
            websockets.exceptions.InvalidStatus: the server refused the handshake (e.g. 401).
            OSError, TimeoutError: the server could not be reached in time.
        """
        if self.ws is not None:
            return self.ws
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect(timeout))
        self.ws = await asyncio.shield(self._connecting)
        return self.ws

    async def connect(self, timeout: float = 10.0) -> ClientConnection:
        """`open` for ONE caller (a stream's own task): no shared handshake task, one task fewer per
        connect. Cancelling the caller aborts the handshake (websockets does). Raises as `open`."""
        if self.ws is None:
            self.ws = await self._connect(timeout)
        return self.ws

    def _connect(self, timeout: float) -> websockets.asyncio.client.connect:
        return websockets.asyncio.client.connect(
            self.url, additional_headers=self.headers, compression=None, open_timeout=timeout, proxy=self._proxy,
        )

    async def send(self, data: str | bytes) -> None:
        await (self.ws or await self.open()).send(data)

    async def recv(self) -> str | bytes:
        return await (self.ws or await self.open()).recv()

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        async for message in self.ws or await self.open():
            yield message

    async def close(self) -> None:
        ws = self._connected()
        if ws is not None:
            await ws.close()

    def abort(self) -> None:
        """Drop the TCP connection (an upstream that stopped reading would stall a close handshake)."""
        ws = self._connected()
        if ws is not None:
            ws.transport.abort()

    # As websockets' connections have them (the SDK itself exposes no close code).

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.ws is not None else None

    @property
    def close_reason(self) -> str | None:
        return self.ws.close_reason if self.ws is not None else None

    def _connected(self) -> ClientConnection | None:
        """The connection, if there is one; a handshake still in progress is cancelled."""
        if self.ws is None and self._connecting is not None:
            if not self._connecting.done():
                self._connecting.cancel()
            elif not self._connecting.cancelled() and self._connecting.exception() is None:
                self.ws = self._connecting.result()  # done while its awaiter was being cancelled
        return self.ws
