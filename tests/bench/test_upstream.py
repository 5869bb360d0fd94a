"""The benchmark's fast fake upstream speaks Deepgram's Live API: checked with the real deepgram-sdk."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
from deepgram.core.api_error import ApiError
from deepgram.core.events import EventType
from deepgram.listen.v1.types import ListenV1Metadata, ListenV1Results

from voxrelay.bench.upstream import FastUpstream

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
        _, stamp = result.channel.alternatives[0].transcript.rsplit(" t", 1)
        assert 0 < now - int(stamp) < 30e9
    assert isinstance(messages[-1], ListenV1Metadata) and messages[-1].duration == 2.5


async def test_a_wrong_key_is_refused() -> None:
    async with FastUpstream(api_key=KEY) as upstream:
        client = client_for(upstream.url, key="wrong")
        with pytest.raises(ApiError) as refused:
            async with client.listen.v1.connect(model="nova-3"):
                pass
    assert refused.value.status_code == 401
