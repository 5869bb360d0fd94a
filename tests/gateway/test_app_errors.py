"""Every bad-input and limit path of /stt-stream gets a clear error, and the server keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support import ServerThread, clip, until, wer
from voxrelay.engines.base import Engine, EngineStream, StreamConfig
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.settings import Settings

LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


@pytest.fixture(scope="module")
def limited_server() -> Iterator[ServerThread]:
    """A second real server with tight limits: 2 sessions, small frames."""
    settings = Settings(port=0, max_sessions=2, max_text_frame=1024, max_audio_frame=8192)
    server = ServerThread(settings, LocalEngine()).start()
    yield server
    server.stop()


async def converse(url: str, frames: list[str | bytes], until_close: bool = True) -> tuple[list[dict[str, Any]], int | None, str]:
    """Send frames, then read every message until the server closes."""
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url) as ws:
        for frame in frames:
            await ws.send(frame)
        try:
            async with asyncio.timeout(30):
                async for raw in ws:
                    messages.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        return messages, ws.close_code, ws.close_reason or ""


def errors(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "error"]


async def test_malformed_json_and_unknown_action_are_survivable(limited_server: ServerThread) -> None:
    audio = clip("s01_command_lights.wav").linear16()
    frames: list[str | bytes] = [json.dumps({"action": "configure", "audio_format": LINEAR16}), "{not json", '{"action":"sing"}']
    frames += [audio[i : i + 3200] for i in range(0, len(audio), 3200)]
    frames += [json.dumps({"action": "configure"}), json.dumps({"action": "stop"})]
    messages, code, _ = await converse(limited_server.url(), frames)
    found = errors(messages)
    assert [e["code"] for e in found] == ["bad_request"] * 3
    assert "not valid JSON" in found[0]["message"]
    assert "unknown action 'sing'" in found[1]["message"]
    assert "configure must be the first frame" in found[2]["message"]
    # The session went on and transcribed the clip.
    text = " ".join(m["transcript"] for m in messages if m["type"] == "final_transcript")
    assert wer([clip("s01_command_lights.wav").reference], [text]) <= 0.2
    assert messages[-1]["type"] == "stopped" and code == 1000


@pytest.mark.parametrize(
    ("configure", "code", "close_code", "needle"),
    [
        ({"audio_format": {"encoding": "mp3"}}, "unsupported_audio", 1003, "encoding"),
        ({"audio_format": {"encoding": "linear16", "sample_rate": 4000}}, "unsupported_audio", 1003, "sample_rate"),
        ({"audio_format": {"encoding": "linear16", "channels": 8}}, "unsupported_audio", 1003, "channels"),
        ({"interim_results": "often"}, "bad_request", 1008, "interim_results"),
    ],
)
async def test_bad_configure_is_fatal(limited_server: ServerThread, configure: dict, code: str, close_code: int, needle: str) -> None:
    messages, closed_with, _ = await converse(limited_server.url(), [json.dumps({"action": "configure", **configure})])
    (error,) = errors(messages)
    assert error["code"] == code and needle in error["message"]
    assert closed_with == close_code


@pytest.mark.parametrize(
    "garbage",
    [
        [b"plain garbage, no header at all " * 128] * 20,  # 80 KiB: more than any real header
        # Starts like a webm (EBML magic) so the demuxer waits for more; the stop's end of stream ends it.
        [b"\x1a\x45\xdf\xa3 this is not webm at all " * 50, json.dumps({"action": "stop"})],
    ],
    ids=["garbage", "fake-header-then-stop"],
)
async def test_undecodable_container_audio(limited_server: ServerThread, garbage: list[str | bytes]) -> None:
    frames: list[str | bytes] = [json.dumps({"action": "configure", "audio_format": {"encoding": "webm"}}), *garbage]
    messages, code, _ = await converse(limited_server.url(), frames)
    (error,) = errors(messages)
    assert error["code"] == "unsupported_audio" and "could not decode webm audio" in error["message"]
    assert code == 1003


async def test_oversize_frames_close_1009(limited_server: ServerThread) -> None:
    messages, code, _ = await converse(limited_server.url(), [json.dumps({"action": "configure"}), b"\x00" * 8194])
    assert errors(messages)[0]["code"] == "limit_exceeded" and "8192" in errors(messages)[0]["message"]
    assert code == 1009
    messages, code, _ = await converse(limited_server.url(), [json.dumps({"action": "stop", "x": "y" * 2000})])
    assert errors(messages)[0]["code"] == "limit_exceeded" and code == 1009


async def test_session_cap_refuses_the_handshake_with_503_and_retry_after(limited_server: ServerThread) -> None:
    """docs/security.md: the cap is checked before the upgrade (503 + Retry-After); 1013 only when handshakes race."""
    await wait_for(lambda: len(limited_server.gateway.sessions) == 0)  # earlier tests' sessions are gone
    async with websockets.connect(limited_server.url()) as first, websockets.connect(limited_server.url()) as second:
        for ws in (first, second):
            await ws.send(json.dumps({"action": "configure"}))
            assert json.loads(await ws.recv())["type"] == "ready"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await converse(limited_server.url(), [])
        response = refused.value.response
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        body = json.loads(response.body)
        assert body["error"] == "limit_exceeded" and "session limit" in body["message"], body
        assert len(limited_server.gateway.sessions) == 2  # the refused handshake made no session
    # Capacity comes back when sessions end.
    await wait_for(lambda: len(limited_server.gateway.sessions) == 0)
    frames = [json.dumps({"action": "configure"}), json.dumps({"action": "stop"})]
    messages, code, _ = await converse(limited_server.url(), frames)
    assert [m["type"] for m in messages] == ["ready", "stopped"] and code == 1000


async def test_session_cap_race_past_the_handshake_closes_1013(
    limited_server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handshakes that pass the cap check together: the one that finds no slot after the upgrade gets 1013."""
    await wait_for(lambda: len(limited_server.gateway.sessions) == 0)
    gatekeeper = limited_server.gateway.gatekeeper
    admit = gatekeeper.admit

    def admit_with_a_stale_count(*args: Any, **kwargs: Any) -> Any:
        return admit(*args, **{**kwargs, "live_sessions": 0})  # as if the other handshakes were not counted yet

    async with websockets.connect(limited_server.url()) as first, websockets.connect(limited_server.url()) as second:
        for ws in (first, second):
            await ws.send(json.dumps({"action": "configure"}))
            assert json.loads(await ws.recv())["type"] == "ready"
        monkeypatch.setattr(gatekeeper, "admit", admit_with_a_stale_count)
        messages, code, _ = await converse(limited_server.url(), [])
        assert [(m["type"], m["code"]) for m in messages] == [("error", "limit_exceeded")], messages
        assert code == 1013
        assert len(limited_server.gateway.sessions) == 2


async def test_max_session_duration(local_engine_server: ServerThread, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_engine_server.gateway.settings, "max_session_s", 2.0)
    async with websockets.connect(local_engine_server.url()) as ws:
        await ws.send(json.dumps({"action": "configure"}))
        seen = []
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(20):
                while True:
                    await ws.send(b"\x00\x00" * 800)  # keep streaming silence past the 2 s limit
                    with contextlib.suppress(TimeoutError):
                        seen.append(json.loads(await asyncio.wait_for(ws.recv(), 0.05)))
        assert ws.close_code == 1008
        assert any(m["type"] == "error" and m["code"] == "limit_exceeded" and "maximum duration" in m["message"] for m in seen)


async def test_the_server_still_serves_after_all_that(limited_server: ServerThread) -> None:
    c = clip("s14_question_distance.wav")
    audio = c.linear16()
    frames: list[str | bytes] = [json.dumps({"action": "configure", "audio_format": LINEAR16})]
    frames += [audio[i : i + 3200] for i in range(0, len(audio), 3200)] + [json.dumps({"action": "stop"})]
    messages, code, _ = await converse(limited_server.url(), frames)
    text = " ".join(m["transcript"] for m in messages if m["type"] == "final_transcript")
    assert wer([c.reference], [text]) <= 0.25 and code == 1000


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    await until(condition, timeout)


class _SlowStartEngine(Engine):
    """An engine that never finishes loading (for the 503 path)."""

    name = "slow"

    async def start(self) -> None:
        await asyncio.Event().wait()

    async def open(self, config: StreamConfig) -> EngineStream:
        raise AssertionError("not used")


async def test_healthz_is_503_until_the_engine_is_ready() -> None:
    engine = _SlowStartEngine()
    server = ServerThread(Settings(port=0), engine).start(timeout=0.2)
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(server.http("/healthz"))
            assert response.status_code == 503 and response.json()["status"] == "starting"
            messages, code, _ = await converse(server.url(), [])
            assert errors(messages)[0]["code"] == "engine_unavailable" and code == 1013
    finally:
        server.stop()
