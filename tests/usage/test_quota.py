"""Quotas per key: the handshake refusal (429 + Retry-After) on every endpoint, the in-session warning at 90 %
and `quota_exceeded` at 100 % after the finals, and per-key overrides by an admin (HTTP and CLI).

Real servers on loopback with the raw-audio echo engine (its finals say how many bytes it heard); SQLite files.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes import EchoEngine
from tests.support import ENDPOINTS, LISTEN, REALTIME, STT, Endpoint, ServerThread, until
from tests.usage.common import (
    ADMIN,
    KEY,
    KEY_ID,
    OTHER,
    OTHER_ID,
    get_usage,
    sample,
    send_all,
    silence,
    stream,
    usage_settings,
)
from voxrelay.cli import main

QUOTA_S = 2.0


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    server = ServerThread(usage_settings(sqlite_url(tmp_path / "usage.db"), quota_audio_s=QUOTA_S), EchoEngine()).start()
    yield server
    server.stop()


async def read_to_close(ws: Any, endpoint: Endpoint) -> list[dict[str, Any]]:
    """Every message until the server closes the socket (even on OpenAI's endpoint)."""
    messages: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            async for raw in ws:
                messages.append(json.loads(raw))
                endpoint.check(messages[-1])
    except websockets.ConnectionClosed:
        pass
    return messages


def quota_error(endpoint: Endpoint, message: dict[str, Any]) -> bool:
    if endpoint is STT:
        return message["type"] == "error" and message["code"] == "quota_exceeded"
    if endpoint is LISTEN:
        return message["type"] == "Error" and message["variant"] == "QuotaExceeded"
    return message["type"] == "error" and message["error"]["code"] == "quota_exceeded"


def seconds_to_next_month() -> float:
    now = datetime.now(timezone.utc)
    following = now.replace(year=now.year + 1, month=1) if now.month == 12 else now.replace(month=now.month + 1)
    return (following.replace(day=1, hour=0, minute=0, second=0, microsecond=0) - now).total_seconds()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_session_reaching_the_quota_gets_its_finals_then_quota_exceeded(
    server: ServerThread, endpoint: Endpoint
) -> None:
    async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(KEY)) as ws:
        await endpoint.start(ws)
        await send_all(ws, silence(endpoint, 3 * QUOTA_S))  # never stops on its own
        messages = await read_to_close(ws, endpoint)
    await until(lambda: not server.gateway.sessions)  # the server's side closed too: the record is final
    assert ws.close_code == 1008, ws.close_reason
    errors = [i for i, message in enumerate(messages) if quota_error(endpoint, message)]
    assert len(errors) == 1 and errors[0] == len(messages) - 1, messages[-3:]
    finals = endpoint.finals(messages)
    assert finals, "the finals come before the quota's error"
    heard = int(finals[-1].split()[1])  # "heard N bytes": what the engine was given before the stop
    assert QUOTA_S <= heard / endpoint.bytes_per_s <= QUOTA_S + 0.5
    if endpoint is STT:  # only /stt-stream has a warning message (Deepgram's and OpenAI's protocols have none)
        warnings = [i for i, m in enumerate(messages) if m["type"] == "warning" and m["code"] == "quota"]
        assert len(warnings) == 1 and warnings[0] < errors[0]
        assert "90%" in messages[warnings[0]]["message"]
        assert [m for m in messages if m["type"] == "error"] == [messages[-1]]  # no "audio after stop" error
    assert sample(server, "voxrelay_errors_total", endpoint=endpoint.label, code="quota_exceeded") == 1
    body = (await get_usage(server, key=KEY)).json()
    assert body["keys"][0]["audio_seconds"] == pytest.approx(heard / endpoint.bytes_per_s, abs=0.01)
    records = await server.gateway.usage.store.sessions(KEY_ID)
    assert [record["outcome"] for record in records] == ["quota"]


async def post_file(server: ServerThread, path: str, key: str) -> httpx.Response:
    scheme = "Token" if path == "/v1/listen" else "Bearer"
    async with httpx.AsyncClient() as client:
        if path == "/v1/listen":
            return await client.post(server.http(path), content=b"\0" * 3200, headers={
                "Authorization": f"{scheme} {key}", "Content-Type": "audio/wav"})
        return await client.post(server.http(path), headers={"Authorization": f"{scheme} {key}"},
                                 data={"model": "whisper-1"}, files={"file": ("a.wav", b"\0" * 3200)})


async def test_a_key_at_its_quota_is_refused_at_the_handshake_on_every_endpoint(server: ServerThread) -> None:
    await stream(server, STT, QUOTA_S + 0.5)
    for endpoint in (STT, LISTEN, REALTIME):
        with pytest.raises(websockets.InvalidStatus) as info:
            async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(KEY)):
                pass
        response = info.value.response
        assert response.status_code == 429, endpoint.label
        assert abs(int(response.headers["Retry-After"]) - seconds_to_next_month()) < 60
        assert b"quota" in response.body
    for path in ("/v1/audio/transcriptions", "/v1/listen"):
        answer = await post_file(server, path, KEY)
        assert answer.status_code == 429, (path, answer.text)
        assert abs(int(answer.headers["Retry-After"]) - seconds_to_next_month()) < 60
        assert "quota" in answer.text
    # The first session's end at the quota, and the refusal.
    assert sample(server, "voxrelay_errors_total", endpoint="stt-stream", code="quota_exceeded") == 2
    assert sample(server, "voxrelay_errors_total", endpoint="v1-listen", code="QUOTA_EXCEEDED") == 1
    # Another key is not affected.
    messages, ws = await stream(server, STT, 0.5, key=OTHER)
    assert ws.close_code == 1000 and messages[-1]["type"] == "stopped"


async def put_quota(server: ServerThread, fingerprint: str, body: Any, key: str | None = ADMIN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as client:
        return await client.put(server.http(f"/v1/usage/quotas/{fingerprint}"), json=body, headers=headers)


async def test_an_admin_sets_and_removes_a_keys_own_quota(server: ServerThread) -> None:
    assert (await put_quota(server, KEY_ID, {"audio_seconds": 0.5}, key=KEY)).status_code == 403
    assert (await put_quota(server, "someone", {"audio_seconds": 0.5})).status_code == 400
    assert (await put_quota(server, KEY_ID, {"audio_seconds": -1})).status_code == 400
    answer = await put_quota(server, KEY_ID, {"audio_seconds": 0.5})
    assert answer.json() == {"key": KEY_ID, "audio_seconds": 0.5, "own": True}
    messages, ws = await stream(server, STT, 1.5)
    assert ws.close_code == 1008 and messages[-1]["code"] == "quota_exceeded"
    assert "0.5 s" in messages[-1]["message"]
    assert (await put_quota(server, OTHER_ID, {"audio_seconds": 0})).status_code == 200  # 0 = unlimited
    messages, ws = await stream(server, STT, QUOTA_S + 1, key=OTHER)
    assert ws.close_code == 1000
    async with httpx.AsyncClient() as client:
        listed = (await client.get(server.http("/v1/usage/quotas"))).json()  # loopback: admin
        assert listed == {"default_audio_s": QUOTA_S, "keys": {KEY_ID: 0.5, OTHER_ID: 0.0}}
        removed = await client.delete(server.http(f"/v1/usage/quotas/{KEY_ID}"))
    assert removed.json() == {"key": KEY_ID, "audio_seconds": QUOTA_S, "own": False}
    messages, ws = await stream(server, STT, 0.5)  # 1.0 s of 2.0 used now: under the default again
    assert ws.close_code == 1000


def test_voxrelay_quota_sets_a_keys_quota_that_a_running_gateway_applies(
    server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXRELAY_DATABASE_URL", sqlite_url(tmp_path / "usage.db"))
    monkeypatch.setenv("VOXRELAY_QUOTA_AUDIO_S", str(QUOTA_S))
    assert main(["quota", KEY_ID, "0.3"]) == 0
    out = capsys.readouterr().out
    assert f"default: {QUOTA_S:g} per key per month" in out and KEY_ID in out and "0.3" in out
    assert main(["quota", "nobody", "1"]) == 2
    # The gateway reads the quotas at every flush (0.5 s here).
    asyncio.run(until(lambda: server.gateway.usage.quota(KEY_ID) == 0.3))
    messages, ws = asyncio.run(stream(server, STT, 1.0))
    assert ws.close_code == 1008 and messages[-1]["code"] == "quota_exceeded"
    assert main(["quota", KEY_ID, "--remove"]) == 0
    asyncio.run(until(lambda: server.gateway.usage.quota(KEY_ID) == QUOTA_S))
