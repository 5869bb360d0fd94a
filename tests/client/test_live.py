"""client/live.py on real gateways on loopback: `connect`, typed messages, and each failure as its exception."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes import EchoEngine
from tests.support import ServerThread, clip, wer
from voxrelay.client import GatewayRefused, GatewayUnreachable, SessionError, connect
from voxrelay.client.live import stream_url
from voxrelay.protocol.messages import ErrorMessage, FinalTranscript, InterimTranscript, Stopped
from voxrelay.settings import Settings

KEY = f"vx-client-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[ServerThread]:
    """Auth on, the echo engine (says how many bytes it heard), 8 KiB frames."""
    settings = Settings(port=0, api_keys=KEY, handshakes_per_minute=0, max_audio_frame=8192)
    server = ServerThread(settings, EchoEngine()).start()
    yield server
    server.stop()


def test_stream_url_accepts_a_base_url() -> None:
    assert stream_url("http://gw:8765") == "ws://gw:8765/stt-stream"
    assert stream_url("https://gw/") == "wss://gw/stt-stream"
    assert stream_url("ws://gw:1/stt-stream", batch=True) == "ws://gw:1/stt-stream?batch=true"


async def test_dictation_through_the_local_engine(local_engine_server: ServerThread) -> None:
    c = clip("s07_names_message.wav")
    messages: list[Any] = []
    async with connect(local_engine_server.url(), endpointing=300) as stream:
        assert stream.engine == "local" and stream.session_id
        pcm = c.pcm()
        for offset in range(0, len(pcm), 8000):  # numpy samples, converted to linear16 by `send`
            await stream.send(pcm[offset : offset + 8000])
        await stream.stop()
        async for message in stream:
            messages.append(message)
    assert isinstance(messages[-1], Stopped)
    finals = [m.transcript for m in messages if isinstance(m, FinalTranscript)]
    assert wer([c.reference], [" ".join(finals)]) <= 0.3, finals
    assert all(m.start <= m.end <= c.duration + 0.5 for m in messages if isinstance(m, FinalTranscript))


async def test_an_api_key_goes_in_the_header_and_batch_allows_fast_audio(keyed_server: ServerThread) -> None:
    async with connect(keyed_server.url(), api_key=KEY, batch=True) as stream:
        for _ in range(40):  # 10 s of audio at once: only batch=true allows it with auth on
            await stream.send(bytes(8000))
        await stream.finalize()
        await stream.stop()
        seen = [message async for message in stream]
    finals = [m.transcript for m in seen if isinstance(m, FinalTranscript)]
    assert finals[-1] == "heard 320000 bytes"
    assert any(isinstance(m, InterimTranscript) for m in seen)


async def test_a_token_goes_as_the_bearer_subprotocol(keyed_server: ServerThread) -> None:
    async with httpx.AsyncClient() as http:
        minted = await http.post(keyed_server.http("/v1/auth/token"), headers={"Authorization": f"Bearer {KEY}"})
    token = minted.json()["token"]
    async with connect(keyed_server.url(), token=token) as stream:
        await stream.send(bytes(3200))
        await stream.stop()
        finals = [m.transcript async for m in stream if isinstance(m, FinalTranscript)]
    assert finals == ["heard 3200 bytes"]


@pytest.mark.parametrize("key", [None, "vx-wrong-key"])
async def test_a_missing_or_wrong_key_is_refused_with_the_gateways_reason(
    keyed_server: ServerThread, key: str | None
) -> None:
    with pytest.raises(GatewayRefused) as caught:
        async with connect(keyed_server.url(), api_key=key):
            pass
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert caught.value.message and KEY not in str(caught.value)


async def test_a_bad_option_is_refused_before_any_audio(keyed_server: ServerThread) -> None:
    with pytest.raises(SessionError) as caught:
        async with connect(keyed_server.url(), api_key=KEY, endpointing=-5):
            pass
    assert caught.value.code == "bad_request" and caught.value.close_code == 1008
    assert "endpointing" in caught.value.message


async def test_a_fatal_error_raises_with_the_servers_code_and_message(keyed_server: ServerThread) -> None:
    async with connect(keyed_server.url(), api_key=KEY) as stream:
        await stream.send(bytes(8193))  # one byte over the frame limit
        with pytest.raises(SessionError) as caught:
            async for _message in stream:
                pass
    assert caught.value.code == "limit_exceeded" and caught.value.close_code == 1009


async def test_a_non_fatal_error_is_yielded_and_the_session_goes_on(keyed_server: ServerThread) -> None:
    async with connect(keyed_server.url(), api_key=KEY) as stream:
        await stream._socket.send("{not json")  # the protocol answers bad_request and goes on
        await stream.send(bytes(3200))
        await stream.stop()
        seen = [message async for message in stream]
    errors = [m for m in seen if isinstance(m, ErrorMessage)]
    assert [e.code for e in errors] == ["bad_request"]
    assert isinstance(seen[-1], Stopped)
    assert "heard 3200 bytes" in [m.transcript for m in seen if isinstance(m, FinalTranscript)]


async def test_an_unreachable_gateway_raises_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(GatewayUnreachable) as caught:
        async with connect(f"ws://127.0.0.1:{port}/stt-stream", open_timeout=5):
            pass
    assert caught.value.code == "unreachable" and str(port) in str(caught.value)


async def test_streams_are_independent(keyed_server: ServerThread) -> None:
    async def one(n: int) -> list[str]:
        async with connect(keyed_server.url(), api_key=KEY) as stream:
            await stream.send(bytes(1000 * n))
            await stream.stop()
            return [m.transcript async for m in stream if isinstance(m, FinalTranscript)]

    assert await asyncio.gather(one(1), one(2)) == [["heard 1000 bytes"], ["heard 2000 bytes"]]
