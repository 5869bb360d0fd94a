"""Admission before the upgrade, and the token endpoint: the glue around `auth.py` and `limits.py`.

`Gatekeeper.admit` is the one admission path of every endpoint: it runs every check that
can still be answered before the upgrade (credentials in the URL, Origin, handshake rate,
draining, the global cap, credentials in the endpoint's form, the per-key cap, engine
readiness) and either returns an `Admission` or raises `Refusal`. The decision is made
here once; each endpoint sends it in its own wire form (`deny` is `/stt-stream`'s:
401/403/429/503 with Retry-After where waiting helps).

    POST /v1/auth/token   Authorization: Bearer KEY  ->  {"token", "expires_in", "subprotocol": "bearer"}
    GET  /v1/auth         ->  {"auth_required": bool}   (the web UI asks for a key only when true)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse

from voxrelay.security import auth
from voxrelay.security.limits import HandshakeLimiter
from voxrelay.settings import Settings

__all__ = [
    "Admission",
    "CredentialForm",
    "Gatekeeper",
    "Handshake",
    "Refusal",
    "RefusalKind",
    "create_auth_router",
    "deny",
]

log = logging.getLogger("voxrelay.security.auth")


CredentialForm = Literal["bearer", "deepgram"]
"""How an endpoint's clients present credentials.

bearer (`/stt-stream`): `Authorization: Bearer KEY`, or the subprotocol `bearer, TOKEN` with a
token from `POST /v1/auth/token`; credentials in the URL are refused.
deepgram (`/v1/listen`): `Authorization: Token KEY` or `Bearer KEY`, or the subprotocol
`token, KEY` (browsers); `VOXRELAY_LISTEN_API_KEYS` are accepted besides `VOXRELAY_API_KEYS`.
"""

RefusalKind = Literal[
    "credentials", "origin", "handshake_rate", "draining", "global_cap", "file_cap", "key_cap", "engine", "quota"
]


@dataclass(frozen=True, slots=True)
class Handshake:
    """What admission reads from an upgrade request."""

    headers: Any  # a case-insensitive mapping (starlette's Headers)
    query: list[tuple[str, str]]
    peer: str | None


@dataclass(frozen=True, slots=True)
class Admission:
    """Who was let in. `owner` counts against a per-key cap; `trusted` = a key holder, or auth is off.

    `rate_limited`: the byte-rate limit applies (auth on, and no `?batch=true` by a key holder).
    """

    owner: auth.KeyId | None
    subprotocol: str | None
    trusted: bool
    batch: bool
    rate_limited: bool


@dataclass
class Refusal(Exception):
    """A handshake refused. `kind` is the decision; `status`/`code`/`reason` are `/stt-stream`'s
    wire form of it (HTTP status before the upgrade, close 1008/1013 after it); other endpoints
    map `kind` to their own form."""

    status: int
    code: str
    reason: str
    retry_after: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    kind: RefusalKind = "credentials"

    @property
    def close_code(self) -> int:
        return 1013 if self.status in (429, 503) else 1008


class Gatekeeper:
    """Credentials, origins and capacity for one process, for every endpoint. Call `admit`, later `release`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = auth.parse_list(settings.api_keys)
        self.auth_on = auth.auth_required(settings.host, self.keys)
        self.origins = auth.parse_list(settings.allowed_origins)
        self.tokens = auth.TokenStore(settings.token_ttl_s, secret=settings.token_secret.encode() or None)
        self.handshakes = HandshakeLimiter(settings.handshakes_per_minute, settings.handshake_burst)
        self.per_key: dict[str, int] = {}
        # Metrics hooks (set by the server): a token was minted; a token or a mint request was refused.
        self.on_token_minted: Callable[[], None] = lambda: None
        self.on_token_refused: Callable[[str], None] = lambda reason: None
        if self.auth_on and not self.keys:
            log.warning(
                "bound to %s with no VOXRELAY_API_KEYS: every connection will be refused "
                "(auth is off only on loopback)",
                settings.host,
            )

    @property
    def listen_keys(self) -> tuple[str, ...]:
        """`/v1/listen` takes its own keys besides the gateway's (read at each handshake)."""
        return auth.parse_list(self.settings.listen_api_keys) + self.keys

    @property
    def listen_auth_on(self) -> bool:
        """Auth on `/v1/listen`: off only on loopback with no keys of either kind."""
        return auth.auth_required(self.settings.host, self.listen_keys)

    # Public methods.

    def share_used_tokens(self, used: auth.UsedTokens) -> None:
        """Remember redeemed tokens in `used` (shared by the workers of a box) instead of this process."""
        self.tokens.remember_used_in(used)

    def admit(
        self,
        handshake: Handshake,
        *,
        form: CredentialForm = "bearer",
        live_sessions: int,
        draining: bool,
        engine_error: str | None = None,
        file_jobs: int | None = None,
        now: float | None = None,
    ) -> Admission:
        """Check a handshake on any endpoint; returns the admission (counted until `release`) or raises `Refusal`.

        The checks, in order: credentials in the URL (bearer form), origin, handshake rate (auth
        on), draining, the global cap, credentials, the per-key cap, engine readiness
        (`engine_error` is why the engine cannot serve, None when it can). A file upload passes
        `file_jobs` (those decoding now): it is held to `max_file_jobs` instead of the session cap,
        since it takes no live session.
        """
        now = time.monotonic() if now is None else now
        settings = self.settings
        headers, query = handshake.headers, handshake.query
        auth_on = self.auth_on if form == "bearer" else self.listen_auth_on
        if form == "bearer" and auth.token_in_query(query):
            raise Refusal(401, "unauthorized", "credentials in the URL are refused (URLs end up in logs); "
                          "send `Authorization: Bearer KEY` or the subprotocol `bearer, TOKEN`")
        if not auth.origin_allowed(headers.get("origin"), headers.get("host"), self.origins, auth_on=auth_on):
            raise Refusal(403, "forbidden", "this page's origin may not connect (see VOXRELAY_ALLOWED_ORIGINS)",
                          kind="origin")
        if auth_on:
            wait = self.handshakes.check(handshake.peer or "?", now)
            if wait is not None:
                raise Refusal(429, "rate_limited", "too many connection attempts from this address",
                              retry_after=max(1, round(wait)), kind="handshake_rate")
        if draining:
            raise Refusal(503, "draining", "the server is shutting down; connect to another instance",
                          retry_after=settings.retry_after_s, kind="draining")
        if file_jobs is not None:
            if file_jobs >= settings.max_file_jobs:
                raise Refusal(429, "limit_exceeded", f"{settings.max_file_jobs} uploads are being transcribed; "
                              "try again later", retry_after=settings.retry_after_s, kind="file_cap")
        elif live_sessions >= settings.max_sessions:
            raise Refusal(503, "limit_exceeded", "the server is at its session limit; try again later",
                          retry_after=settings.retry_after_s, kind="global_cap")
        if form == "bearer":
            owner, kind = self._authenticate(headers, now)
            subprotocol = "bearer" if kind == "token" else None
        else:
            owner, kind = self._authenticate_deepgram(headers, auth_on)
            subprotocol = _deepgram_subprotocol(headers.get("sec-websocket-protocol"))
        if owner is not None and self.per_key.get(owner, 0) >= settings.max_sessions_per_key:
            raise Refusal(429, "limit_exceeded",
                          f"this key already has {settings.max_sessions_per_key} open sessions",
                          retry_after=settings.retry_after_s, kind="key_cap")
        if engine_error is not None:
            raise Refusal(503, "engine_unavailable", engine_error, retry_after=settings.retry_after_s, kind="engine")
        if owner is not None:
            self.per_key[owner] = self.per_key.get(owner, 0) + 1
        trusted = kind != "token"
        batch = trusted and dict(query).get("batch", "").lower() in ("1", "true")
        return Admission(owner, subprotocol, trusted, batch, rate_limited=auth_on and not batch)

    def release(self, admission: Admission) -> None:
        if admission.owner is not None:
            left = self.per_key.get(admission.owner, 0) - 1
            if left > 0:
                self.per_key[admission.owner] = left
            else:
                self.per_key.pop(admission.owner, None)

    def mint(self, authorization: str | None, peer: str | None, now: float | None = None) -> tuple[str, float]:
        """A connection token for the key in `authorization`; raises `Refusal`."""
        try:
            minted = self._mint(authorization, peer, now)
        except Refusal as refusal:
            self.on_token_refused(refusal.code)
            raise
        self.on_token_minted()
        return minted

    def _mint(self, authorization: str | None, peer: str | None, now: float | None) -> tuple[str, float]:
        now = time.monotonic() if now is None else now
        if self.auth_on and self.handshakes.check(peer or "?", now) is not None:
            raise Refusal(429, "rate_limited", "too many token requests from this address", retry_after=5)
        credential = auth.credential_from(authorization, None)
        if self.auth_on:
            if credential is None:
                raise Refusal(401, "unauthorized", "send `Authorization: Bearer KEY` to mint a token")
            owner = auth.match_key(credential.value, self.keys)
            if owner is None:
                raise Refusal(401, "unauthorized", "invalid API key")
        else:
            owner = "local"
        try:
            # Wall-clock expiry: another worker or host checks it.
            wall = time.time()
            token, expiry = self.tokens.mint(owner, wall)
        except auth.AuthError as exc:
            raise Refusal(exc.status, "rate_limited", exc.reason) from None
        return token, expiry - wall

    # Private helpers.

    def _authenticate_deepgram(self, headers: Any, auth_on: bool) -> tuple[auth.KeyId | None, str]:
        if not auth_on:
            return None, "none"
        invalid = Refusal(401, "unauthorized", "invalid credentials")
        keys = self.listen_keys
        if not keys:
            raise invalid
        candidates: list[str] = []
        scheme, _, value = (headers.get("authorization") or "").strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            candidates.append(value.strip())
        offered = auth.offered_protocols(headers.get("sec-websocket-protocol"))
        if len(offered) >= 2 and offered[0].lower() in ("token", "bearer"):
            candidates.append(offered[1])
        for candidate in candidates:
            owner = auth.match_key(candidate, keys)
            if owner is not None:
                return owner, "key"
        raise invalid

    def _authenticate(self, headers: Any, now: float) -> tuple[auth.KeyId | None, str]:
        credential = auth.credential_from(headers.get("authorization"), headers.get("sec-websocket-protocol"))
        if not self.auth_on:
            if credential is not None and credential.kind == "token":
                # A browser that minted a token from an auth-off gateway still gets its subprotocol back.
                return None, "token"
            return None, "none"
        if not self.keys:
            raise Refusal(401, "unauthorized", "the server has no API keys configured (VOXRELAY_API_KEYS)")
        if credential is None:
            raise Refusal(401, "unauthorized", "authentication required: send `Authorization: Bearer KEY`, "
                          "or the subprotocol `bearer, TOKEN` with a token from POST /v1/auth/token")
        if credential.kind == "key":
            owner = auth.match_key(credential.value, self.keys)
            if owner is None:
                raise Refusal(401, "unauthorized", "invalid API key")
            return owner, "key"
        try:
            return self.tokens.redeem(credential.value, time.time()), "token"
        except auth.AuthError as exc:
            if exc.status != 401:  # the shared used-token memory could not answer
                raise Refusal(exc.status, "unavailable", exc.reason, retry_after=1) from None
            self.on_token_refused("expired" if exc.reason == auth.EXPIRED else "invalid_or_reused")
            raise Refusal(401, "unauthorized", exc.reason) from None


async def deny(websocket: WebSocket, refusal: Refusal) -> None:
    """Answer a handshake with the refusal's HTTP status (or close 1008/1013 without the extension)."""
    client = websocket.client.host if websocket.client else "?"
    log.info("handshake from %s refused (HTTP %d): %s", client, refusal.status, refusal.reason)
    headers = {"Retry-After": str(refusal.retry_after)} if refusal.retry_after else {}
    body = {"error": refusal.code, "message": refusal.reason}
    try:
        await websocket.send_denial_response(JSONResponse(body, refusal.status, headers=headers))
    except RuntimeError:  # no websocket.http.response extension: refuse after the upgrade
        await websocket.accept()
        await websocket.send_json({"type": "error", "code": "limit_exceeded" if refusal.close_code == 1013
                                   else "bad_request", "message": refusal.reason})
        await websocket.close(refusal.close_code, refusal.reason[:120])


def _deepgram_subprotocol(sec_websocket_protocol: str | None) -> str | None:
    """The subprotocol to answer: browsers send `token, KEY` and fail unless `token` is echoed."""
    offered = auth.offered_protocols(sec_websocket_protocol)
    for scheme in ("token", "bearer"):
        for name in offered:
            if name.lower() == scheme:
                return name
    return None


class _DenialNoise(logging.Filter):
    """uvicorn 0.54's websockets-sansio never marks a denial response as a finished handshake, and
    logs "ASGI callable returned without completing handshake" after every 401/403/429/503 it sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "ASGI callable returned without completing handshake."


def create_auth_router(gatekeeper: Gatekeeper) -> APIRouter:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DenialNoise) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(_DenialNoise())
    router = APIRouter()

    @router.get("/v1/auth")
    async def auth_info() -> JSONResponse:
        return JSONResponse({"auth_required": gatekeeper.auth_on, "token_ttl_s": gatekeeper.settings.token_ttl_s})

    @router.post("/v1/auth/token")
    async def mint_token(request: Request) -> JSONResponse:
        peer = request.client.host if request.client else None
        try:
            token, ttl = gatekeeper.mint(request.headers.get("authorization"), peer)
        except Refusal as exc:
            log.info("token request from %s refused (HTTP %d): %s", peer or "?", exc.status, exc.reason)
            headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Bearer realm="voxrelay"'
            return JSONResponse({"error": exc.code, "message": exc.reason}, exc.status, headers=headers)
        return JSONResponse(
            {"token": token, "expires_in": round(ttl, 3), "subprotocol": "bearer"},
            headers={"Cache-Control": "no-store"},
        )

    return router
