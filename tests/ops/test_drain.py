"""Graceful drain: every session in flight receives its finals, new ones are refused, then the server exits."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from typing import Any

import httpx
import openai
import pytest
import websockets

from tests.fakes import CountingEngine, FileCountingEngine
from tests.support import ServerThread
from voxrelay.audio.pcm import linear16_wav
from voxrelay.engines.base import Engine
from voxrelay.ops.drain import DrainingServer
from voxrelay.settings import Settings

LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


def draining_server(engine: Engine | None = None, **settings: Any) -> ServerThread:
    server = ServerThread(Settings(port=0, max_sessions=50, **settings), engine or CountingEngine(chunk=32000))
    server.server = DrainingServer(server.config, server.app.state.gateway.drainer)
    server._thread = threading.Thread(target=server.server.run, daemon=True)
    return server.start()


async def open_session(server: ServerThread, audio_bytes: int) -> tuple[Any, asyncio.Task[list[dict[str, Any]]]]:
    ws = await websockets.connect(server.url())
    await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16}))
    assert json.loads(await ws.recv())["type"] == "ready"
    for i in range(0, audio_bytes, 16000):
        await ws.send(b"\1\0" * (min(16000, audio_bytes - i) // 2))

    async def read() -> list[dict[str, Any]]:
        messages = []
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
        except websockets.ConnectionClosedError:
            pass
        return messages

    return ws, asyncio.create_task(read())


def spoken(messages: list[dict[str, Any]]) -> int:
    """Audio bytes covered by finals (the counting engine names its byte ranges)."""
    total = 0
    for m in messages:
        if m["type"] == "final_transcript":
            _, start, _, end = m["transcript"].split()
            total += int(end) - int(start)
    return total


async def wait_until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110  # server-thread state, polled from the test's loop
            await asyncio.sleep(0.02)


async def test_admin_drain_delivers_every_final_then_exits() -> None:
    server = draining_server()
    try:
        sizes = [3200 * (i + 1) for i in range(20)]  # 0.1 to 2 s of audio, mid-chunk for most
        sessions = [await open_session(server, n) for n in sizes]
        await wait_until(lambda: len(server.gateway.sessions) == len(sizes))
        # Everything sent has reached the server's session before the drain begins.
        async with httpx.AsyncClient() as client:
            # Through a local reverse proxy (uvicorn trusts X-Forwarded-For from loopback), a remote client is refused.
            forbidden = await client.post(server.http("/admin/drain"), headers={"X-Forwarded-For": "198.51.100.7"})
            assert forbidden.status_code == 403 and not server.gateway.draining
            assert (await client.post(server.http("/admin/drain"))).status_code == 202
            assert server.gateway.draining
            assert (await client.get(server.http("/readyz"))).status_code == 503
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(server.url())
        assert refused.value.response.status_code == 503 and refused.value.response.headers["Retry-After"]
        for (ws, reader), size in zip(sessions, sizes, strict=True):
            messages = await asyncio.wait_for(reader, 20)
            types = [m["type"] for m in messages]
            assert {"type": "warning", "code": "draining"}.items() <= messages[types.index("warning")].items(), types
            assert types[-1] == "stopped" and ws.close_code == 1000
            assert spoken(messages) == size  # no final lost
        await asyncio.to_thread(server._thread.join, 20)
        assert not server._thread.is_alive()  # the drain ended the server
    finally:
        server.stop()


async def test_sigterm_drains_before_uvicorn_shuts_down() -> None:
    server = draining_server()
    try:
        sessions = [await open_session(server, 48000) for _ in range(5)]
        await wait_until(lambda: len(server.gateway.sessions) == 5)
        server.server.handle_exit(signal.SIGTERM, None)  # what the signal handler calls
        for ws, reader in sessions:
            messages = await asyncio.wait_for(reader, 20)
            assert any(m["type"] == "warning" and m["code"] == "draining" for m in messages)
            assert messages[-1]["type"] == "stopped"
            assert spoken(messages) == 48000 and ws.close_code == 1000
        await asyncio.to_thread(server._thread.join, 20)
        assert not server._thread.is_alive()
    finally:
        server.stop()


async def test_drain_deadline_closes_stragglers_with_1012() -> None:
    server = draining_server(drain_timeout_s=0.5)
    try:
        # A session whose engine never flushes: its stream is replaced by one that ignores close().
        ws, reader = await open_session(server, 3200)
        await wait_until(lambda: len(server.gateway.sessions) == 1)
        connection = next(iter(server.gateway.drainer.connections))
        connection.session.stop = lambda: None  # type: ignore[method-assign]  # never stops by itself
        async with httpx.AsyncClient() as client:
            result = (await client.post(server.http("/admin/drain?wait=true"), timeout=20)).json()
        assert result["forced"] == 1
        await asyncio.wait_for(reader, 20)
        assert ws.close_code == 1012
    finally:
        server.stop()


def test_drain_is_refused_to_remote_peers_without_the_admin_key() -> None:
    from fastapi.testclient import TestClient

    from voxrelay.gateway.app import create_app

    app = create_app(Settings(port=0, admin_key="adm-secret"), CountingEngine())
    with TestClient(app, client=("203.0.113.9", 5000)) as client:
        assert client.post("/admin/drain").status_code == 403
        assert client.post("/admin/drain", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.post("/admin/drain", headers={"Authorization": "Bearer adm-secret"}).status_code == 202
        assert app.state.gateway.draining


async def test_drain_closes_v1_listen_streams_like_close_stream() -> None:
    """Deepgram's protocol has no warning: a drained /v1/listen stream gets its final Results, Metadata, 1000."""
    server = draining_server()
    try:
        url = server.url("/v1/listen") + "?encoding=linear16&sample_rate=16000"
        sizes = [6400, 16000, 48000]
        streams = []
        for size in sizes:
            ws = await websockets.connect(url)
            await ws.send(b"\1\0" * (size // 2))
            streams.append(ws)
        await wait_until(lambda: len(server.gateway.sessions) == len(sizes))
        async with httpx.AsyncClient() as client:
            assert (await client.post(server.http("/admin/drain"))).status_code == 202
        for ws, size in zip(streams, sizes, strict=True):
            messages = []
            async with asyncio.timeout(20):
                async for raw in ws:
                    messages.append(json.loads(raw))
            finals = [m for m in messages if m.get("type") == "Results" and m["is_final"]]
            covered = sum(int(m["channel"]["alternatives"][0]["transcript"].split()[3]) - int(
                m["channel"]["alternatives"][0]["transcript"].split()[1]) for m in finals)
            assert covered == size  # every byte sent before the drain came back as final
            assert messages[-1]["type"] == "Metadata" and ws.close_code == 1000
        await asyncio.to_thread(server._thread.join, 20)
        assert not server._thread.is_alive()
    finally:
        server.stop()


async def test_audio_still_queued_when_the_drain_begins_is_decoded() -> None:
    """The drain race: frames the server holds but its read task has not taken yet must not be dropped.

    The read task is held before its second `receive()` (as a busy server would be), so two of the three
    frames wait in the ASGI server's queue when the drain begins; it is let go when the warning arrives.
    """
    server = draining_server()
    try:
        ws = await websockets.connect(server.url())
        await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16}))
        assert json.loads(await ws.recv())["type"] == "ready"
        connection = next(iter(server.gateway.drainer.connections))
        receive, gate = connection.ws.receive, threading.Event()

        async def held_receive() -> Any:
            await asyncio.to_thread(gate.wait, 20)
            return await receive()

        connection.ws.receive = held_receive  # the pending receive() takes the first frame; later ones wait
        for _ in range(3):
            await ws.send(b"\1\0" * 8000)
        await wait_until(lambda: connection.session.audio_bytes == 16000)
        server.server.handle_exit(signal.SIGTERM, None)
        messages = []
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
                if messages[-1]["type"] == "warning":
                    gate.set()
        finally:
            gate.set()
        types = [m["type"] for m in messages]
        assert "error" not in types, messages  # "audio after stop is ignored": the queued frames were dropped
        assert spoken(messages) == 48000 and types[-1] == "stopped" and ws.close_code == 1000, messages
    finally:
        server.stop()


async def test_a_drain_waits_for_an_upload_in_flight_and_refuses_new_ones_with_503() -> None:
    engine = FileCountingEngine()
    server = draining_server(engine)
    try:
        with openai.OpenAI(api_key="unused", base_url=server.http("/v1"), max_retries=0) as client:
            held = linear16_wav(b"HOLD" + bytes(31996), 16000, 1)  # 1 s; the engine waits for `release`
            upload = asyncio.create_task(
                asyncio.to_thread(client.audio.transcriptions.create, file=("a.wav", held), model="whisper-1")
            )
            await wait_until(lambda: engine.holding == 1)
            async with httpx.AsyncClient() as http:
                drain = asyncio.create_task(http.post(server.http("/admin/drain?wait=true"), timeout=30))
                await wait_until(lambda: server.gateway.draining)
                with pytest.raises(openai.InternalServerError) as refused:
                    await asyncio.to_thread(
                        client.audio.transcriptions.create, file=("b.wav", linear16_wav(bytes(3200), 16000, 1)),
                        model="whisper-1",
                    )
                assert refused.value.status_code == 503 and refused.value.response.headers["retry-after"]
                assert not drain.done() and server.gateway.file_jobs == 1  # the drain is waiting for the upload
                engine.release.set()
                transcript = await asyncio.wait_for(upload, 20)
                # The fake names the byte ranges of what it got: the whole WAV, header included (a raw-audio engine).
                ranges = [(first, min(first + 16000, len(held))) for first in range(0, len(held), 16000)]
                assert transcript.text == " ".join(f"Bytes {a}-{b}." for a, b in ranges)
                result = (await asyncio.wait_for(drain, 20)).json()
            assert result["sessions"] == 1 and result["forced"] == 0
            await wait_until(lambda: not server._thread.is_alive())  # the drain ended the server
    finally:
        engine.release.set()
        server.stop()
