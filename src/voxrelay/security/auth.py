"""Who may connect: API keys, short-lived single-use tokens, origins. Pure: no I/O, no clock.

- Auth is off only when the server is bound to loopback and no keys are configured
  (`auth_required`). Otherwise every handshake needs a credential.
- Servers and CLIs send `Authorization: Bearer KEY`; keys are compared in constant time
  (`match_key`) and are known afterwards only by a fingerprint (`KeyId`) that is safe to log.
- Browsers never hold a key: `TokenStore.mint` makes a signed token that expires after
  `ttl_s` and can be redeemed once (`TokenStore.redeem`); the browser offers it as
  `Sec-WebSocket-Protocol: bearer, TOKEN`, and the server answers `bearer` only.
- Tokens in query strings are refused (`token_in_query`): URLs end up in logs.
- `origin_allowed` checks the `Origin` header against an exact allowlist (no wildcards).

Tokens are stateless: `vxt_<owner>.<expiry ms>.<nonce>.<HMAC-SHA256 of the rest>`, so any process
holding the same secret redeems what another minted (`voxrelay serve --workers N`, or instances
sharing `VOXRELAY_TOKEN_SECRET`). Single use needs a memory of used nonces (`UsedTokens`): in one
process by default, or one the processes of a box share (`security/used_tokens.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

__all__ = [
    "AuthError",
    "Credential",
    "KeyId",
    "TokenStore",
    "UsedTokens",
    "UsedTokensInMemory",
    "auth_required",
    "credential_from",
    "is_loopback_host",
    "key_id",
    "match_key",
    "origin_allowed",
    "parse_list",
    "token_in_query",
]

KeyId = str  # "key-<8 hex>": a fingerprint of the key, safe to log and to count sessions by

_QUERY_CREDENTIALS = ("token", "access_token", "key", "api_key", "apikey", "auth", "authorization", "bearer")


class AuthError(Exception):
    """A refused credential; `status` is the HTTP status before the upgrade (401/403), `reason` is for people."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Credential:
    """What a handshake offered: a long-lived key (header) or a minted token (subprotocol)."""

    kind: Literal["key", "token"]
    value: str

    def __repr__(self) -> str:  # never show the secret
        return f"Credential(kind={self.kind!r}, value='[redacted]')"


def parse_list(setting: str) -> tuple[str, ...]:
    """A comma-separated setting as a tuple of non-empty, stripped items."""
    return tuple(item.strip() for item in setting.split(",") if item.strip())


def is_loopback_host(host: str) -> bool:
    """True for `127.0.0.1`, `::1`, `localhost` and the like (a bind address or a peer)."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_required(bind_host: str, keys: Sequence[str]) -> bool:
    """Auth is off only when bound to loopback with no keys configured."""
    return bool(keys) or not is_loopback_host(bind_host)


def key_id(key: str) -> KeyId:
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def match_key(candidate: str, keys: Iterable[str]) -> KeyId | None:
    """The id of the configured key equal to `candidate` (constant time per key), else None."""
    found: KeyId | None = None
    for key in keys:
        # Compare against every key so timing does not tell which one (or whether any) matched.
        if hmac.compare_digest(candidate.encode(), key.encode()):
            found = key_id(key)
    return found


def offered_protocols(header: str | None) -> list[str]:
    return [p.strip() for p in (header or "").split(",") if p.strip()]


def credential_from(authorization: str | None, sec_websocket_protocol: str | None) -> Credential | None:
    """The credential a handshake or request carries: `Bearer KEY` header, or `bearer, TOKEN` subprotocol."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return Credential("key", value.strip())
    offered = offered_protocols(sec_websocket_protocol)
    if len(offered) >= 2 and offered[0].lower() == "bearer":
        return Credential("token", offered[1])
    return None


def token_in_query(query: Mapping[str, str] | Iterable[tuple[str, str]]) -> bool:
    """True if the URL carries something that looks like a credential (refused: URLs end up in logs)."""
    items = query.items() if isinstance(query, Mapping) else query
    return any(name.lower() in _QUERY_CREDENTIALS for name, _ in items)


def origin_allowed(origin: str | None, host: str | None, allowlist: Sequence[str], *, auth_on: bool) -> bool:
    """Whether a handshake's `Origin` may open a socket (against cross-site WebSocket hijacking).

    - No Origin header: not a browser (CLIs, servers); allowed here, credentials decide.
    - An exact entry of `allowlist` (e.g. `app://voxrelay` for the Electron app).
    - Same origin as the request (the web UI served by the gateway): `Origin` host:port equals
      `Host`. With auth off, the host must also be loopback, so a DNS-rebound name
      (evil.example -> 127.0.0.1) cannot reach an unauthenticated gateway.
    - With auth off, any loopback origin (local dev servers such as Vite's).
    `null` and `file://` origins are never allowed implicitly.
    """
    if origin is None:
        return True
    origin = origin.strip()
    if origin in allowlist:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if not auth_on:
        return is_loopback_host(parts.hostname) and (host is None or is_loopback_host(_hostname(host)))
    return host is not None and parts.netloc.lower() == host.strip().lower()


def _hostname(host: str) -> str:
    return urlsplit(f"//{host}").hostname or host


class UsedTokens(Protocol):
    """The nonces of redeemed tokens, kept until the token would have expired anyway."""

    def claim(self, nonce: str, forget_after: float, now: float) -> bool:
        """Record `nonce` as used; False if it already was (the token is being reused)."""


class UsedTokensInMemory:
    """`UsedTokens` for one process."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}  # nonce -> forget after
        self._purge_at = 1024  # size that triggers the next sweep: twice what the last one kept, so O(1) a claim

    def claim(self, nonce: str, forget_after: float, now: float) -> bool:
        if len(self._used) >= self._purge_at:
            for old in [n for n, until in self._used.items() if until < now]:
                del self._used[old]
            self._purge_at = max(1024, 2 * len(self._used))
        if nonce in self._used:
            return False
        self._used[nonce] = forget_after
        return True


class TokenStore:
    """Short-lived, single-use connection tokens, signed with `secret`. The caller passes the clock
    (wall-clock seconds: a token minted by one process or host is checked by another).

    Args:
        ttl_s: how long a token may wait before it is used to connect.
        max_outstanding: at most this many unexpired tokens minted here and not redeemed here (minting
            beyond raises 429); a token redeemed by another process counts until it expires.
        secret: the HMAC key; None = a random one (tokens then work in this process only).
        used: where redeemed nonces are remembered; None = this process's memory.
    """

    def __init__(
        self, ttl_s: float = 60.0, max_outstanding: int = 10_000, secret: bytes | None = None,
        used: UsedTokens | None = None,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_outstanding = max_outstanding
        self._secret = secret or secrets.token_bytes(32)
        self._used = used or UsedTokensInMemory()
        self._outstanding: dict[str, float] = {}  # nonce -> expiry, minted here and not redeemed here

    def __len__(self) -> int:
        return len(self._outstanding)

    def __repr__(self) -> str:  # never show the secret
        return f"TokenStore(ttl_s={self.ttl_s}, outstanding={len(self._outstanding)})"

    def remember_used_in(self, used: UsedTokens) -> None:
        """Remember redeemed tokens in `used` from now on (one shared by several processes)."""
        self._used = used

    def mint(self, owner: KeyId, now: float) -> tuple[str, float]:
        """A new token for `owner`, and its expiry time (`now + ttl_s`)."""
        for nonce in [n for n, expiry in self._outstanding.items() if expiry < now]:
            del self._outstanding[nonce]
        if len(self._outstanding) >= self.max_outstanding:
            raise AuthError(429, "too many unused tokens; use or let some expire first")
        expiry_ms = int((now + self.ttl_s) * 1000)
        nonce = secrets.token_urlsafe(16)
        body = f"{owner}.{expiry_ms}.{nonce}"
        self._outstanding[nonce] = expiry_ms / 1000
        return f"vxt_{body}.{self._sign(body)}", expiry_ms / 1000

    def redeem(self, token: str, now: float) -> KeyId:
        """The owner of `token`, which is used up. Raises `AuthError` (401) if unknown, used or expired."""
        body, _, mac = token.removeprefix("vxt_").rpartition(".")
        fields = body.rsplit(".", 2)
        # Constant time, so a forger learns nothing from how long the refusal took; bytes, since a header may
        # carry any latin-1 character and compare_digest refuses non-ASCII str.
        signed = hmac.compare_digest(mac.encode(), self._sign(body).encode())
        if not token.startswith("vxt_") or len(fields) != 3 or not signed:
            raise AuthError(401, "unknown token")
        owner, expiry_ms, nonce = fields
        expiry = int(expiry_ms) / 1000
        if now > expiry:
            raise AuthError(401, EXPIRED)
        if not self._used.claim(nonce, expiry, now):
            raise AuthError(401, _USED)
        self._outstanding.pop(nonce, None)
        return owner

    def _sign(self, body: str) -> str:
        digest = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_USED = "this token was already used; mint a new one for each connection"
EXPIRED = "the token expired; mint a new one and connect within its lifetime"
