"""Auth, origins and abuse limits on a real server with keys configured (so auth is on, even on loopback)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes import CountingEngine
from tests.support import ServerThread, until
from voxrelay.security.limits import HandshakeLimiter
from voxrelay.settings import Settings

KEY = f"vx-test-{uuid.uuid4().hex}"
OTHER = f"vx-other-{uuid.uuid4().hex}"
LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    settings = Settings(
        port=0, api_keys=f"{KEY},{OTHER}", max_sessions=6, max_sessions_per_key=2, idle_timeout_s=1.0,
        handshakes_per_minute=0, rate_limit_burst_s=1.0,
    )
    server = ServerThread(settings, CountingEngine()).start()
    yield server
    server.stop()


# Where a handshake's headers (Authorization, Sec-WebSocket-Protocol) could be logged: uvicorn passes its
# "uvicorn.error" logger to websockets, which logs every request header at DEBUG.
SCANNED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "websockets", "websockets.server", "voxrelay")


def leaked(records: list[logging.LogRecord], secrets: list[str]) -> list[str]:
    """The secrets that appear in server log records (the test's own websockets client logs its own headers)."""
    logged = "\n".join(r.getMessage() for r in records if not r.name.startswith("websockets.client"))
    return [secret for secret in secrets if secret in logged]


@pytest.fixture(autouse=True)
def no_secrets_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Every test: keys and minted tokens appear in no server log record, with every logger at DEBUG."""
    minted: list[str] = []
    caplog.set_level(logging.DEBUG)
    for name in SCANNED_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    # uvicorn's own logging config stops its records at "uvicorn" (propagate=False): capture them there too.
    stopped = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.access")]
    stopped = [logger for logger in stopped if not logger.propagate]
    for logger in stopped:
        logger.addHandler(caplog.handler)
    try:
        yield minted
    finally:
        for logger in stopped:
            logger.removeHandler(caplog.handler)
    assert not leaked(caplog.records, [KEY, OTHER, *minted])
    server_records = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    tokens = [r.getMessage() for r in server_records if "vxt_" in r.getMessage()]
    assert not tokens, tokens  # no minted token at all, even one this test did not record


def test_the_secret_scan_sees_a_key_in_a_handshake_debug_record(caplog: pytest.LogCaptureFixture) -> None:
    """The scan can fail: a key logged at DEBUG on uvicorn's handshake logger is found."""
    logging.getLogger("uvicorn.error").debug("request header: Bearer %s", KEY)
    assert leaked(caplog.records, [KEY, OTHER]) == [KEY]
    caplog.clear()  # planted here on purpose; the fixture's own scan must not fail this test


async def mint(server: ServerThread, key: str = KEY) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(server.http("/v1/auth/token"), headers={"Authorization": f"Bearer {key}"})


async def refused(url: str, **kwargs: Any) -> websockets.InvalidStatus:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, **kwargs):
            pass
    return info.value


async def dictate(ws: Any, seconds: float = 1.0) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16}))
    audio = b"\0\0" * int(16000 * seconds)
    try:
        for i in range(0, len(audio), 16000):  # 0.5 s frames, as fast as the socket takes them
            await ws.send(audio[i : i + 16000])
        await ws.send(json.dumps({"action": "stop"}))
    except websockets.ConnectionClosed:
        pass  # refused mid-way: read what the server said
    return await read_all(ws)


async def read_all(ws: Any) -> list[dict[str, Any]]:
    messages = []
    try:
        async for raw in ws:
            messages.append(json.loads(raw))
    except websockets.ConnectionClosedError:
        pass
    return messages


async def test_auth_info_endpoint(server: ServerThread) -> None:
    async with httpx.AsyncClient() as client:
        info = (await client.get(server.http("/v1/auth"))).json()
    assert info["auth_required"] is True


async def test_no_credential_wrong_key_and_query_token_get_401(server: ServerThread) -> None:
    for response in [
        (await refused(server.url())).response,
        (await refused(server.url(), additional_headers={"Authorization": "Bearer nope"})).response,
        (await refused(server.url() + f"?token={KEY}")).response,
        (await refused(server.url() + "?access_token=abc", additional_headers={"Authorization": f"Bearer {KEY}"})).response,
    ]:
        assert response.status_code == 401
        assert KEY.encode() not in response.body
        assert json.loads(response.body)["error"] == "unauthorized"
    assert b"URL" in (await refused(server.url() + "?token=x")).response.body


async def test_key_in_header_opens_a_session(server: ServerThread) -> None:
    async with websockets.connect(server.url(), additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        messages = await dictate(ws)
    assert messages[-1]["type"] == "stopped"
    assert all(KEY not in json.dumps(m) for m in messages)


async def test_minted_token_is_single_use_over_the_subprotocol(server: ServerThread, no_secrets_logged: list[str]) -> None:
    response = await mint(server)
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    body = response.json()
    token = body["token"]
    no_secrets_logged.append(token)
    assert body["subprotocol"] == "bearer" and 0 < body["expires_in"] <= 60
    async with websockets.connect(server.url(), subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"  # never the token
        messages = await dictate(ws)
    assert messages[-1]["type"] == "stopped" and all(token not in json.dumps(m) for m in messages)
    reused = await refused(server.url(), subprotocols=["bearer", token])
    assert reused.response.status_code == 401 and b"already used" in reused.response.body
    metrics = server.gateway.metrics
    assert metrics.tokens_minted.labels("session")._value.get() >= 1
    assert metrics.tokens_refused.labels("invalid_or_reused")._value.get() >= 1


async def test_expired_and_unknown_tokens_get_401(server: ServerThread) -> None:
    token, _ = server.gateway.gatekeeper.tokens.mint("key-x", time.time() - 3600)  # wall clock: any worker checks it
    expired = await refused(server.url(), subprotocols=["bearer", token])
    assert expired.response.status_code == 401 and b"expired" in expired.response.body
    unknown = await refused(server.url(), subprotocols=["bearer", "vxt_forged"])
    assert unknown.response.status_code == 401 and b"unknown token" in unknown.response.body
    assert server.gateway.metrics.tokens_refused.labels("expired")._value.get() >= 1


async def test_mint_needs_a_key(server: ServerThread) -> None:
    assert (await mint(server, "wrong")).status_code == 401
    async with httpx.AsyncClient() as client:
        response = await client.post(server.http("/v1/auth/token"))
    assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")


async def test_origins_are_checked_on_every_handshake(server: ServerThread) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    for origin in ("https://evil.example", "null", "file://"):
        denied = await refused(server.url(), origin=origin, additional_headers=headers)  # type: ignore[arg-type]
        assert denied.response.status_code == 403 and b"origin" in denied.response.body
    for origin in ("app://voxrelay", f"http://127.0.0.1:{server.port}"):
        async with websockets.connect(server.url(), origin=origin, additional_headers=headers) as ws:  # type: ignore[arg-type]
            assert (await dictate(ws))[-1]["type"] == "stopped"


async def test_per_key_session_cap(server: ServerThread) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with websockets.connect(server.url(), additional_headers=headers), websockets.connect(
        server.url(), additional_headers=headers
    ):
        third = await refused(server.url(), additional_headers=headers)
        assert third.response.status_code == 429 and third.response.headers["Retry-After"]
        # Another key is not affected.
        async with websockets.connect(server.url(), additional_headers={"Authorization": f"Bearer {OTHER}"}) as ws:
            assert (await dictate(ws))[-1]["type"] == "stopped"


async def test_handshake_rate_limit(server: ServerThread) -> None:
    gatekeeper = server.gateway.gatekeeper
    saved = gatekeeper.handshakes
    gatekeeper.handshakes = HandshakeLimiter(per_minute=1, burst=2)
    try:
        for _ in range(2):
            assert (await refused(server.url())).response.status_code == 401
        limited = await refused(server.url())
        assert limited.response.status_code == 429 and int(limited.response.headers["Retry-After"]) >= 1
        assert (await mint(server)).status_code == 429
    finally:
        gatekeeper.handshakes = saved


async def test_audio_faster_than_twice_real_time_is_refused_unless_batch(server: ServerThread) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with websockets.connect(server.url(), additional_headers=headers) as ws:
        messages = await dictate(ws, seconds=10)  # 10 s at once
    assert ws.close_code == 1008
    error = next(m for m in messages if m["type"] == "error")
    assert error["code"] == "limit_exceeded" and "real time" in error["message"]
    async with websockets.connect(server.url() + "?batch=true", additional_headers=headers) as ws:
        messages = await dictate(ws, seconds=10)
    assert messages[-1]["type"] == "stopped" and not [m for m in messages if m["type"] == "error"]
    # Browsers (tokens) cannot ask for batch.
    token = (await mint(server)).json()["token"]
    async with websockets.connect(server.url() + "?batch=true", subprotocols=["bearer", token]) as ws:  # type: ignore[list-item]
        messages = await dictate(ws, seconds=10)
    assert ws.close_code == 1008


async def test_idle_session_is_closed(server: ServerThread) -> None:
    async with websockets.connect(server.url(), additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16}))
        messages = await read_all(ws)  # until the server closes
    assert ws.close_code == 1008
    assert messages[-1]["code"] == "limit_exceeded" and "no audio" in messages[-1]["message"]


async def test_v1_listen_accepts_the_gateway_keys(server: ServerThread) -> None:
    url = server.url("/v1/listen") + "?encoding=linear16&sample_rate=16000"
    assert (await refused(url)).response.status_code == 401
    async with websockets.connect(url, additional_headers={"Authorization": f"Token {KEY}"}) as ws:
        await ws.send(json.dumps({"type": "CloseStream"}))
        async for _ in ws:
            pass
    assert ws.close_code == 1000
    denied = await refused(url, origin="https://evil.example", additional_headers={"Authorization": f"Token {KEY}"})  # type: ignore[arg-type]
    assert denied.response.status_code == 403


async def test_sessions_are_released(server: ServerThread) -> None:
    await until(lambda: not server.gateway.sessions, timeout=10)
    assert not server.gateway.sessions and not server.gateway.gatekeeper.per_key


def test_file_uploads_are_held_to_the_file_job_cap_not_the_session_cap() -> None:
    from starlette.datastructures import Headers

    from voxrelay.security.admission import Gatekeeper, Handshake, Refusal

    gatekeeper = Gatekeeper(Settings(api_keys=KEY, max_sessions=1, max_file_jobs=2, max_sessions_per_key=5))
    upload = Handshake(Headers({"authorization": f"Bearer {KEY}"}), [], "127.0.0.1")
    # The live sessions are at their cap, yet an upload is let in: it takes no live session.
    admission = gatekeeper.admit(upload, live_sessions=1, draining=False, file_jobs=1)
    assert admission.owner is not None and gatekeeper.per_key[admission.owner] == 1
    with pytest.raises(Refusal) as raised:
        gatekeeper.admit(upload, live_sessions=0, draining=False, file_jobs=2)
    assert (raised.value.status, raised.value.kind, raised.value.retry_after) == (429, "file_cap", 5)
    # The same credential check as every endpoint.
    bad = Handshake(Headers({"authorization": "Bearer nope"}), [], "127.0.0.1")
    with pytest.raises(Refusal) as raised:
        gatekeeper.admit(bad, live_sessions=0, draining=False, file_jobs=0)
    assert raised.value.status == 401
    gatekeeper.release(admission)
    assert gatekeeper.per_key == {}
