"""Upstream faults at random points: 200 linear16 sessions each transcribe exactly as without the fault.

The fake upstream's finals are checksums of the audio they cover (`Script.words_from_audio`),
one word per 100 ms, so equal transcripts (and timestamps) mean every byte arrived once, in
order, and the timestamps were realigned. Each faulty session's fault hits only its first
upstream connection (`fault_once`): drops (1006) and closes 1011/1012/1013.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import websockets

from tests.support import ServerThread, encode_container
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.settings import Settings
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

API_KEY = f"dg-test-{uuid.uuid4().hex}"
SESSIONS = 200
SECONDS = 3.0
BYTES = int(16000 * 2 * SECONDS)
FAULTS: list[tuple[str, int]] = [("drop", 1006), ("close", 1011), ("close", 1012), ("close", 1013)]


def audio_for(i: int) -> bytes:
    return random.Random(i).randbytes(BYTES)


def scripts() -> dict[str, Script]:
    rng = random.Random(6)
    base = {"final_every_s": 0.5, "interim_every_s": 0.0, "words_from_audio": True}
    out = {"clean": Script(**base)}  # type: ignore[arg-type]
    for i in range(SESSIONS):
        kind, code = FAULTS[i % len(FAULTS)]
        out[f"fault{i}"] = Script(
            **base,  # type: ignore[arg-type]
            fault=kind,  # type: ignore[arg-type]
            close_code=code,
            close_reason="NET-0000: scripted" if code == 1011 else "scripted",
            fault_after_bytes=rng.randrange(2, BYTES),
            fault_once=True,
        )
    out["fatal"] = Script(**base, fault="close", close_code=1008, close_reason="DATA-0000: bad audio", fault_after_bytes=6400)  # type: ignore[arg-type]
    out["webm"] = Script(interim_every_s=0.0, final_every_s=0.5, fault="drop", fault_after_bytes=3000, fault_once=True)
    out["mulaw-fault"] = Script(**base, fault="drop", fault_after_bytes=20_000, fault_once=True)  # type: ignore[arg-type]
    return out


@pytest_asyncio.fixture(scope="module")
async def fake() -> AsyncIterator[FakeDeepgram]:
    async with FakeDeepgram(api_key=API_KEY, scripts=scripts()) as server:
        yield server


@pytest_asyncio.fixture(scope="module")
async def gateway(fake: FakeDeepgram) -> AsyncIterator[ServerThread]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPGRAM_API_KEY", API_KEY)
        engine = DeepgramEngine(
            DeepgramSettings(url=fake.url, reconnect_base_s=0.02, reconnect_cap_s=0.2, close_timeout_s=5)
        )
    server = ServerThread(Settings(port=0, max_sessions=SESSIONS + 10), engine).start()
    assert server.gateway.ready
    yield server
    await asyncio.to_thread(server.stop)


async def session(url: str, model: str, audio: bytes, encoding: str = "linear16") -> list[dict[str, Any]]:
    fmt = {"encoding": encoding, "sample_rate": 16000, "channels": 1}
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"action": "configure", "audio_format": fmt, "model": model, "interim_results": False}))
        for i in range(0, len(audio), 3200):
            await ws.send(audio[i : i + 3200])
        await ws.send(json.dumps({"action": "stop"}))
        async for raw in ws:
            messages.append(json.loads(raw))
    return messages


def finals(messages: list[dict[str, Any]]) -> list[tuple[str, float, float]]:
    return [(m["transcript"], m["start"], m["end"]) for m in messages if m["type"] == "final_transcript"]


async def test_200_sessions_with_faults_lose_no_words(gateway: ServerThread, fake: FakeDeepgram) -> None:
    limit = asyncio.Semaphore(50)

    async def both(i: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with limit:
            audio = audio_for(i)
            clean = await session(gateway.url(), "clean", audio)
            faulty = await session(gateway.url(), f"fault{i}", audio)
            return clean, faulty

    results = await asyncio.gather(*(both(i) for i in range(SESSIONS)))
    words_lost = 0
    for i, (clean, faulty) in enumerate(results):
        assert clean[-1]["type"] == "stopped" and faulty[-1]["type"] == "stopped", (i, faulty[-3:])
        assert not [m for m in faulty if m["type"] == "error"], (i, faulty)
        expected, got = finals(clean), finals(faulty)
        words_lost += len(" ".join(t for t, _, _ in expected).split()) - len(" ".join(t for t, _, _ in got).split())
        assert got == expected, i
        assert any(m["type"] == "warning" and m["code"] == "reconnecting" for m in faulty), i
        assert len(" ".join(t for t, _, _ in expected).split()) == int(SECONDS * 10)  # one word per 100 ms
    assert words_lost == 0
    assert gateway.gateway.engine.reconnects >= SESSIONS
    reconnects = gateway.gateway.metrics.upstream_reconnects.labels("deepgram", "ok")._value.get()
    assert reconnects == gateway.gateway.engine.reconnects  # every reconnect reached /metrics
    await fake.wait_all_closed()
    assert gateway.gateway.engine.active_streams == 0


async def test_fatal_close_goes_straight_to_the_client(gateway: ServerThread) -> None:
    """Deepgram's DATA-0000 close (1008) is not retried: the client gets `unsupported_audio` and close 1003."""
    before = gateway.gateway.engine.reconnects
    audio = audio_for(0)
    fmt = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}
    messages: list[dict[str, Any]] = []
    async with websockets.connect(gateway.url(), max_size=None) as ws:
        configure = {"action": "configure", "audio_format": fmt, "model": "fatal", "interim_results": False}
        await ws.send(json.dumps(configure))

        async def send_all() -> None:
            # The gateway closes mid-stream (the fault hits after 6400 bytes): later sends fail.
            with contextlib.suppress(websockets.ConnectionClosed):
                for i in range(0, len(audio), 3200):
                    await ws.send(audio[i : i + 3200])
                await ws.send(json.dumps({"action": "stop"}))

        sender = asyncio.create_task(send_all())
        with contextlib.suppress(websockets.ConnectionClosedError):  # the close is not 1000: kept, checked below
            async for raw in ws:
                messages.append(json.loads(raw))
        await sender
    assert gateway.gateway.engine.reconnects == before
    errors = [m for m in messages if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["unsupported_audio"], messages
    assert "DATA-0000" in errors[0]["message"]
    assert ws.close_code == 1003 and "stopped" not in [m["type"] for m in messages], (ws.close_code, messages)


async def test_webm_session_survives_a_drop(gateway: ServerThread, fake: FakeDeepgram) -> None:
    from tests.support import pink_noise

    audio = encode_container(pink_noise(3.0), 16000, "webm")
    start = len(fake.connections)
    messages = await session(gateway.url(), "webm", audio, encoding="webm")
    assert messages[-1]["type"] == "stopped"
    assert any(m["type"] == "warning" and m["code"] == "reconnecting" for m in messages)
    assert finals(messages)
    second = [c for c in fake.connections[start:] if c.param("model") == "webm"][1]
    assert second.audio_bytes > 0  # the header went first, then the rest of the stream


async def test_a_mulaw_session_is_replayed_after_a_drop_and_loses_no_words(gateway: ServerThread) -> None:
    """G.711 is raw audio too (one byte a sample): what no final covered yet is re-sent after a reconnect."""
    audio = audio_for(SESSIONS)[: 16000 * 3]  # 3 s of mu-law at 16 kHz
    clean = await session(gateway.url(), "clean", audio, encoding="mulaw")
    faulty = await session(gateway.url(), "mulaw-fault", audio, encoding="mulaw")
    assert any(m["type"] == "warning" and m["code"] == "reconnecting" for m in faulty)
    assert finals(faulty) == finals(clean) and len(" ".join(t for t, _, _ in finals(clean)).split()) == 30
