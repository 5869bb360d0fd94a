"""SIGTERM to a real `voxrelay serve` process: live sessions on both endpoints get every final, then it exits 0.

The gateway runs the deepgram engine against the fake Deepgram (in this test's event loop). The fake
times its finals by the audio it received, so the seconds a client's finals cover name the bytes that
reached the engine: 16 kHz linear16 is 32000 bytes per second.
"""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

import websockets

from tests.processes import GatewayProcess
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

BYTES_PER_S = 32000
FRAME = b"\1\0" * 8000  # 0.5 s of 16 kHz linear16
FRAMES = 5  # 2.5 s per session, sent in full before the signal


def covered_bytes(seconds: list[tuple[float, float]]) -> int:
    return round(sum(end - start for start, end in seconds) * BYTES_PER_S)


async def stt_stream_session(base: str) -> Any:
    ws = await websockets.connect(f"{base}/stt-stream")
    await ws.send(json.dumps({"action": "configure", "audio_format": {"encoding": "linear16", "sample_rate": 16000}}))
    assert json.loads(await ws.recv())["type"] == "ready"
    return ws


async def test_sigterm_drains_live_sessions_on_both_endpoints_then_exits_0() -> None:
    async with FakeDeepgram(api_key="fake-key", default=Script(final_every_s=1.0)) as fake:
        server = await GatewayProcess.start(fake.url, {})
        try:
            base = f"ws://127.0.0.1:{server.port}"  # `start` waited for the address and the engine's readiness
            stt = [await stt_stream_session(base) for _ in range(2)]
            listen_url = f"{base}/v1/listen?encoding=linear16&sample_rate=16000"
            listen = [await websockets.connect(listen_url) for _ in range(2)]
            for ws in [*stt, *listen]:
                for _ in range(FRAMES):
                    await ws.send(FRAME)  # returns once the frame is written to the socket
            # Every byte is sent; the server may not have read it yet: the drain must still decode it.
            server.proc.send_signal(signal.SIGTERM)
            await server.wait_for_line(r"draining 4 live session\(s\)")

            for ws in stt:
                messages = [json.loads(raw) async for raw in ws]
                types = [m["type"] for m in messages]
                # The fake may answer the first second of audio before the signal lands: the warning need not
                # come first, but once, before the session's end.
                warned = [i for i, m in enumerate(messages) if m["type"] == "warning" and m.get("code") == "draining"]
                assert len(warned) == 1 and warned[0] < len(messages) - 1, types
                finals = [(m["start"], m["end"]) for m in messages if m["type"] == "final_transcript"]
                assert covered_bytes(finals) == FRAMES * len(FRAME), messages
                assert "error" not in types, messages  # e.g. "audio after stop is ignored": audio was lost
                assert types[-1] == "stopped" and ws.close_code == 1000, (types, ws.close_code)
            for ws in listen:
                messages = [json.loads(raw) async for raw in ws]
                finals = [(m["start"], m["start"] + m["duration"]) for m in messages if m.get("type") == "Results"
                          and m["is_final"]]  # fmt: skip
                assert covered_bytes(finals) == FRAMES * len(FRAME), messages
                assert messages[-1]["type"] == "Metadata" and ws.close_code == 1000, (messages[-1], ws.close_code)

            async with asyncio.timeout(30):
                assert await server.proc.wait() == 0, "\n".join(server.lines)
            await server.wait_for_line(r"drained: \{'sessions': 4, 'forced': 0")
        finally:
            await server.kill()
            print("\n".join(server.lines))  # the server's log, shown when the test fails
