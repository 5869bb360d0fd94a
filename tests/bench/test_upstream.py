"""The benchmark's fast fake upstream speaks Deepgram's Live API: checked with the real deepgram-sdk."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import websockets
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.core.events import EventType
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results

from voxrelay.bench.upstream import FastUpstream
from voxrelay.testing.fake_deepgram import Script

KEY = "bench-test-key"
FRAME = b"\x00\x01" * 1600  # 100 ms of 16 kHz linear16


def client_for(url: str, key: str = KEY) -> AsyncDeepgramClient:
    http = url.replace("ws://", "http://")
    env = DeepgramClientEnvironment(base=http, production=url, agent=url, agent_rest=http)
    return AsyncDeepgramClient(api_key=key, environment=env)


async def test_results_are_stamped_and_closestream_ends_the_stream() -> None:
    async with FastUpstream(api_key=KEY) as upstream:
        messages: list[Any] = []
        closed = asyncio.Event()
        client = client_for(upstream.url)
        connect = client.listen.v1.connect(model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True)
        async with connect as conn:
            conn.on(EventType.MESSAGE, messages.append)
            conn.on(EventType.CLOSE, lambda _: closed.set())
            reader = asyncio.create_task(conn.start_listening())
            for _ in range(25):  # 2.5 s of audio
                await conn.send_media(FRAME)
            await conn.send_close_stream()
            await asyncio.wait_for(closed.wait(), 10)
            await reader
    results = [m for m in messages if isinstance(m, ListenV1Results)]
    finals = [r for r in results if r.is_final]
    # Interims every 0.25 s of audio and a final per second; CloseStream flushes the last 0.5 s.
    assert len(finals) == 3 and [r.speech_final for r in finals] == [True, True, True]
    assert len(results) - len(finals) >= 8
    assert finals[-1].start == 2.0 and finals[-1].duration == 0.5
    now = time.monotonic_ns()
    for result in results:
        text, stamp = result.channel.alternatives[0].transcript.rsplit(" t", 1)
        assert Script().transcript.startswith(text)  # the canned text, growing through the interims
        assert 0 < now - int(stamp) < 30e9
    assert isinstance(messages[-1], ListenV1Metadata) and messages[-1].duration == 2.5


async def test_a_wrong_key_is_refused() -> None:
    async with FastUpstream(api_key=KEY) as upstream:
        client = client_for(upstream.url, key="wrong")
        with pytest.raises(ApiError) as refused:
            async with client.listen.v1.connect(model="nova-3"):
                pass
    assert refused.value.status_code == 401


@pytest.mark.parametrize(
    ("script", "code", "reason"),
    [
        (
            Script(fault="close", fault_after_bytes=6400, close_code=1011, close_reason="NET-0000: scripted"),
            1011,
            "NET-0000: scripted",
        ),
        (Script(fault="drop", fault_after_bytes=6400), None, None),
    ],
    ids=["close", "drop"],
)
async def test_scripted_faults_run_on_the_fast_shell_too(script: Script, code: int | None, reason: str | None) -> None:
    """The fault scripts of the tests' fake come from the shared core; this shell carries them out."""
    async with FastUpstream(api_key=KEY, script=script) as upstream:
        url = f"{upstream.url}/v1/listen?encoding=linear16&sample_rate=16000"
        async with websockets.connect(url, additional_headers={"Authorization": f"Token {KEY}"}) as ws:
            with pytest.raises(websockets.ConnectionClosed) as ended:
                for _ in range(50):
                    await ws.send(FRAME)
                await asyncio.wait_for(ws.recv(), 10)
    received = ended.value.rcvd
    if code is None:
        assert received is None  # dropped: no close frame
    else:
        assert received is not None and (received.code, received.reason) == (code, reason)


def test_the_fast_shell_refuses_scripts_that_need_a_clock() -> None:
    with pytest.raises(ValueError, match="reply_delay_s"):
        FastUpstream(script=Script(reply_delay_s=0.5))
