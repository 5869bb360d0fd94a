"""The benchmark's load generator: real-time streams straight to the fake upstream and through a gateway."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import ServerThread
from voxrelay.bench.loadgen import run_load
from voxrelay.bench.upstream import FastUpstream
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.settings import Settings

KEY = "bench-test-key"
# One second of audio per stream: interims at 0.3, 0.5, 0.8 and 1.0 s of audio, and the final at 1.0 s.
PER_STREAM = 5


async def test_direct_streams_time_every_transcript() -> None:
    async with FastUpstream(api_key=KEY) as upstream:
        url = f"{upstream.url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"
        result = await run_load(url, 20, 1.0, protocol="direct", api_key=KEY, stagger_s=0.2)
    assert result.failures == []
    assert len(result.latencies_s) == 20 * PER_STREAM
    assert all(0 <= latency < 5 for latency in result.latencies_s)


async def test_a_refused_stream_is_a_failure() -> None:
    async with FastUpstream(api_key=KEY) as upstream:
        result = await run_load(f"{upstream.url}/v1/listen", 2, 0.5, protocol="direct", api_key="wrong", stagger_s=0)
    assert len(result.failures) == 2 and "401" in result.failures[0]
    assert result.latencies_s == []


async def test_streams_through_the_gateway_are_relayed_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FastUpstream(api_key=KEY) as upstream:
        monkeypatch.setenv("DEEPGRAM_API_KEY", KEY)
        engine = DeepgramEngine(DeepgramSettings(url=upstream.url))
        gateway = ServerThread(Settings(port=0, max_sessions=20), engine).start()
        try:
            result = await run_load(gateway.url(), 10, 1.0, protocol="gateway", stagger_s=0.2)
        finally:
            await asyncio.to_thread(gateway.stop)
    assert result.failures == []
    # Each interim and final went through the gateway as an interim_transcript or final_transcript.
    assert len(result.latencies_s) == 10 * PER_STREAM
