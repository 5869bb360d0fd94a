"""The deepgram engine's WebSocket transport, against the scriptable fake Deepgram."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets.exceptions

from voxrelay.engines.deepgram.transport import WebSocketTransport, claim_transport
from voxrelay.testing.fake_deepgram import FakeDeepgram

KEY = "transport-test-key"
HALF_SECOND = b"\x10\x00" * 8000


def listen_url(fake: FakeDeepgram) -> str:
    return f"{fake.url}/v1/listen?encoding=linear16&sample_rate=16000&interim_results=true"


async def test_a_reader_and_a_sender_share_one_handshake() -> None:
    """First use opens the connection, once, even when recv and send ask at the same moment."""
    async with FakeDeepgram(api_key=KEY) as fake:
        transport = WebSocketTransport(listen_url(fake), {"Authorization": f"Token {KEY}"})
        received, _ = await asyncio.gather(transport.recv(), transport.send(HALF_SECOND))
        assert json.loads(received)["type"] == "Results"
        await transport.send(json.dumps({"type": "CloseStream"}))
        async for _ in transport:  # the final Results and Metadata, then the close
            pass
        await transport.close()
        assert transport.close_code == 1000
        assert len(fake.connections) == 1 and fake.connections[0].audio_bytes == len(HALF_SECOND)
        assert fake.connections[0].extensions is None  # no permessage-deflate offered


async def test_a_refused_handshake_raises_on_open() -> None:
    async with FakeDeepgram(api_key=KEY) as fake:
        transport = WebSocketTransport(listen_url(fake), {"Authorization": "Token wrong"})
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await transport.open(timeout=5)
    assert refused.value.response.status_code == 401


async def test_a_task_that_claims_transports_gets_each_one_made_in_it() -> None:
    claimed: list[WebSocketTransport] = []

    async def opener() -> WebSocketTransport:
        claim_transport.set(claimed.append)
        return WebSocketTransport("ws://127.0.0.1:9/v1/listen", {})

    made = await asyncio.create_task(opener())
    elsewhere = WebSocketTransport("ws://127.0.0.1:9/v1/listen", {})  # this task claims nothing
    assert claimed == [made] and elsewhere not in claimed
    elsewhere.abort()  # nothing to drop: never opened
    assert elsewhere.close_code is None


async def test_connect_opens_for_one_caller_and_raises_a_refusal() -> None:
    """A stream's own connect: no shared handshake task; a refused handshake raises from it too."""
    async with FakeDeepgram(api_key=KEY) as fake:
        transport = WebSocketTransport(listen_url(fake), {"Authorization": f"Token {KEY}"})
        ws = await transport.connect(timeout=5)
        assert await transport.connect(timeout=5) is ws and await transport.open() is ws
        await transport.close()
        refused = WebSocketTransport(listen_url(fake), {"Authorization": "Token wrong"})
        with pytest.raises(websockets.exceptions.InvalidStatus):
            await refused.connect(timeout=5)
