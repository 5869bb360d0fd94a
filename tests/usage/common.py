"""Helpers of the usage tests: gateways with a database of the test's own, sessions that stream a known amount."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import websockets

from tests.support import Endpoint, ServerThread, read_all, send_all, until
from voxrelay.security.auth import key_id
from voxrelay.settings import Settings

KEY = f"vx-usage-{uuid.uuid4().hex}"
OTHER = f"vx-usage-other-{uuid.uuid4().hex}"
ADMIN = f"vx-admin-{uuid.uuid4().hex}"
KEY_ID, OTHER_ID = key_id(KEY), key_id(OTHER)


def usage_settings(database_url: str, **overrides: Any) -> Settings:
    """Auth on (two keys and an admin key), no byte-rate limit (the tests stream faster than real time)."""
    values: dict[str, Any] = dict(
        port=0, api_keys=f"{KEY},{OTHER}", admin_key=ADMIN, database_url=database_url, rate_limit_factor=0,
        handshakes_per_minute=0, usage_flush_s=0.5,
    )
    values.update(overrides)
    return Settings(**values)


def silence(endpoint: Endpoint, seconds: float, frame_s: float = 0.1) -> list[bytes | str]:
    """`seconds` of silence in the endpoint's format, `frame_s` a frame, as its client sends them."""
    frame = int(endpoint.bytes_per_s * frame_s)
    data = b"\0" * int(endpoint.bytes_per_s * seconds)
    return [endpoint.frame(data[i : i + frame]) for i in range(0, len(data), frame)]


async def stream(server: ServerThread, endpoint: Endpoint, seconds: float, key: str = KEY,
                 stop: bool = True) -> tuple[list[dict[str, Any]], Any]:
    """One session: `seconds` of audio, then the endpoint's stop; returns the messages and the socket once the
    server has closed its side too (its usage record is then final, in memory)."""
    async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(key)) as ws:
        await endpoint.start(ws)
        await send_all(ws, [*silence(endpoint, seconds), *([endpoint.stop] if stop else [])])
        messages = await read_all(ws, endpoint)
    await until(lambda: not server.gateway.sessions)
    return messages, ws


async def get_usage(server: ServerThread, query: str = "", key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient() as client:
        return await client.get(server.http(f"/v1/usage{query}"), headers=headers)


def audio_seconds(body: dict[str, Any], key_fingerprint: str) -> float:
    return next((entry["audio_seconds"] for entry in body["keys"] if entry["key"] == key_fingerprint), 0.0)


def sample(server: ServerThread, name: str, **labels: str) -> float:
    return server.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


async def stored_rows(url: str) -> list[dict[str, Any]]:
    """Every usage row of the database at `url`, read by a connection of the test's own."""
    from voxrelay.usage.database import create_engine
    from voxrelay.usage.store import UsageStore

    engine = create_engine(url)
    try:
        return await UsageStore(engine).sessions()
    finally:
        await engine.dispose()


async def until_rows(url: str, condition: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Poll the database until `condition(rows)` holds; the rows that satisfied it."""
    async with asyncio.timeout(timeout):
        while True:
            rows = await stored_rows(url)
            if condition(rows):
                return rows
            await asyncio.sleep(0.1)  # polling another process's writes: there is no event to wait on
