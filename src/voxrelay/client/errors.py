"""What a client call raises: one base class, with the server's `code` and `message` when it gave them."""

from __future__ import annotations

__all__ = ["AudioFileError", "ClientError", "GatewayRefused", "GatewayUnreachable", "SessionError"]


class ClientError(Exception):
    """Base of every error `voxrelay.client` raises; `code` is stable, `message` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message


class AudioFileError(ClientError):
    """The file (or bytes) could not be decoded as audio; nothing was sent."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__("unsupported_audio", f"{source}: {reason}")


class GatewayUnreachable(ClientError):
    """No WebSocket could be opened: the host is down, the port closed, the URL wrong, or TLS failed."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__("unreachable", f"cannot reach {url}: {reason}")
        self.url = url


class GatewayRefused(ClientError):
    """The gateway answered the handshake with an HTTP error (401 key, 403 origin, 429 busy, 503 starting...).

    `code` and `message` are the gateway's own (its JSON body); `status` is the HTTP status and
    `retry_after` the seconds its `Retry-After` header asked for, if any.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"the gateway refused the connection (HTTP {self.status}): {self.message}"


class SessionError(ClientError):
    """The gateway ended the session with an `error` message (docs/protocol.md, "Errors and close codes")."""

    def __init__(self, code: str, message: str, close_code: int | None = None) -> None:
        super().__init__(code, message)
        self.close_code = close_code

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"
