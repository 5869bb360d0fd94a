"""`GET /v1/usage` and the per-key quotas, over HTTP.

    GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD[&group_by=day]
        Authorization: Bearer KEY      -> that key's usage only
        admin (loopback peer, or Authorization: Bearer VOXRELAY_ADMIN_KEY) -> every key
    GET    /v1/usage/quotas                 (admin) the default and every key's own quota
    PUT    /v1/usage/quotas/{fingerprint}   (admin) {"audio_seconds": N}: a key's own monthly quota (0 = unlimited)
    DELETE /v1/usage/quotas/{fingerprint}   (admin) the default applies to the key again

`from` and `to` are UTC days, both included (default: this month so far). This gateway's figures
are written before a report is read, so a report includes its sessions up to now.
"""

from __future__ import annotations

import hmac
import json
import re
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxrelay.security import auth
from voxrelay.security.admission import Gatekeeper
from voxrelay.usage.meter import Meter
from voxrelay.usage.store import KeyUsage

__all__ = ["FINGERPRINT", "Caller", "create_usage_router", "report_body"]

FINGERPRINT = re.compile(r"^(key-[0-9a-f]{8}|anonymous)$")

Caller = str | None  # a key's fingerprint, or None for an admin (every key)


class _Denied(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.response = JSONResponse({"error": code, "message": message}, status)


def _caller(request: Request, gatekeeper: Gatekeeper, admin_key: str, *, admin_only: bool) -> Caller:
    """Who asks: None for an admin, else the key's fingerprint; raises `_Denied`."""
    scheme, _, credential = (request.headers.get("authorization") or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() == "bearer" and credential:
        if admin_key and hmac.compare_digest(credential.encode(), admin_key.encode()):
            return None
        owner = auth.match_key(credential, gatekeeper.listen_keys)
        if owner is None:
            raise _Denied(401, "unauthorized", "invalid API key")
        if admin_only:
            raise _Denied(403, "forbidden", "quotas are set by an admin (loopback, or VOXRELAY_ADMIN_KEY)")
        return owner
    if auth.is_loopback_host(request.client.host if request.client else ""):
        return None
    raise _Denied(401, "unauthorized", "send `Authorization: Bearer KEY` (your usage) or the admin key")


def _days(request: Request, today: date) -> tuple[date, date]:
    try:
        start = date.fromisoformat(request.query_params.get("from") or today.replace(day=1).isoformat())
        end = date.fromisoformat(request.query_params.get("to") or today.isoformat())
    except ValueError:
        raise _Denied(400, "bad_request", "`from` and `to` are days: YYYY-MM-DD") from None
    if end < start:
        raise _Denied(400, "bad_request", "`to` is before `from`")
    return start, end


def report_body(start: date, end: date, lines: list[KeyUsage], meter: Meter, caller: Caller = None) -> dict[str, Any]:
    """The report's JSON: one entry per key (a key asking for its own always gets its entry), with its days
    when grouped by day."""
    keys: dict[str, dict[str, Any]] = {}
    if caller is not None:
        keys[caller] = {"key": caller, "sessions": 0, "audio_seconds": 0.0, "quota_audio_s": meter.quota(caller)}
    for line in lines:
        entry = keys.setdefault(line.key, {"key": line.key, "sessions": 0, "audio_seconds": 0.0,
                                           "quota_audio_s": meter.quota(line.key)})
        entry["sessions"] += line.sessions
        entry["audio_seconds"] = round(entry["audio_seconds"] + line.audio_seconds, 3)
        if line.day is not None:
            entry.setdefault("days", []).append(
                {"day": line.day.isoformat(), "sessions": line.sessions, "audio_seconds": line.audio_seconds}
            )
    return {"from": start.isoformat(), "to": end.isoformat(), "keys": list(keys.values())}


def create_usage_router(meter: Meter, gatekeeper: Gatekeeper, admin_key: str) -> APIRouter:
    router = APIRouter()
    unavailable = {"error": "usage_unavailable", "message": "the usage database cannot be reached; try again later"}

    @router.get("/v1/usage")
    async def usage(request: Request) -> JSONResponse:
        try:
            caller = _caller(request, gatekeeper, admin_key, admin_only=False)
            start, end = _days(request, meter.clock().date())
        except _Denied as denied:
            return denied.response
        group_by = request.query_params.get("group_by")
        if group_by not in (None, "", "day"):
            return JSONResponse({"error": "bad_request", "message": "group_by takes `day`"}, 400)
        await meter.flush()  # this gateway's figures up to now; a failure leaves the last written ones
        try:
            midnight = datetime.min.time()
            lines = await meter.store.report(
                datetime.combine(start, midnight), datetime.combine(end + timedelta(days=1), midnight),
                key=caller, by_day=group_by == "day",
            )
        except Exception:
            meter.read_failed()
            return JSONResponse(unavailable, 503, headers={"Retry-After": "5"})
        return JSONResponse(report_body(start, end, lines, meter, caller))

    @router.get("/v1/usage/quotas")
    async def list_quotas(request: Request) -> JSONResponse:
        try:
            _caller(request, gatekeeper, admin_key, admin_only=True)
            overrides = await meter.store.quotas()
        except _Denied as denied:
            return denied.response
        except Exception:
            meter.read_failed()
            return JSONResponse(unavailable, 503, headers={"Retry-After": "5"})
        return JSONResponse({"default_audio_s": meter.settings.quota_audio_s, "keys": overrides})

    @router.put("/v1/usage/quotas/{fingerprint}")
    async def put_quota(fingerprint: str, request: Request) -> JSONResponse:
        try:
            _caller(request, gatekeeper, admin_key, admin_only=True)
            seconds = _quota_body(await request.body())
        except _Denied as denied:
            return denied.response
        return await _set(fingerprint, seconds)

    @router.delete("/v1/usage/quotas/{fingerprint}")
    async def delete_quota(fingerprint: str, request: Request) -> JSONResponse:
        try:
            _caller(request, gatekeeper, admin_key, admin_only=True)
        except _Denied as denied:
            return denied.response
        return await _set(fingerprint, None)

    async def _set(fingerprint: str, seconds: float | None) -> JSONResponse:
        if not FINGERPRINT.match(fingerprint):
            return JSONResponse({"error": "bad_request", "message": "a key is named by its fingerprint "
                                 "(key-1a2b3c4d, as the logs and /v1/usage name it) or `anonymous`"}, 400)
        try:
            await meter.store.set_quota(fingerprint, seconds)
        except Exception:
            meter.read_failed()
            return JSONResponse(unavailable, 503, headers={"Retry-After": "5"})
        meter.set_override(fingerprint, seconds)
        return JSONResponse({"key": fingerprint, "audio_seconds": meter.quota(fingerprint),
                             "own": seconds is not None})

    return router


def _quota_body(body: bytes) -> float:
    try:
        value = json.loads(body or b"null").get("audio_seconds")
    except (ValueError, AttributeError):
        value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _Denied(400, "bad_request", 'send {"audio_seconds": N}: seconds of audio per month, 0 = unlimited')
    return float(value)

