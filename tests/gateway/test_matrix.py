"""One matrix over every endpoint: each admission refusal, each limit, each close code and each metric.

Real uvicorn servers on loopback (`ServerThread`), a raw-audio fake engine (no speech needed):
what is decided once (admission, limits, metrics) must hold on `/stt-stream`, `/v1/listen` and `/v1/realtime`
alike (whose audio comes base64 in text frames); only the wire form differs, spelled out per endpoint.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.fakes import EchoEngine
from tests.support import ENDPOINTS, LISTEN, REALTIME, STT, Endpoint, ServerThread, read_all, send_all
from voxrelay.gateway.realtime import realtime_frame_limits
from voxrelay.security.limits import FrameLimits, HandshakeLimiter
from voxrelay.settings import Settings

KEY = f"vx-matrix-{uuid.uuid4().hex}"
OTHER = f"vx-other-{uuid.uuid4().hex}"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        port=0, api_keys=f"{KEY},{OTHER}", max_sessions=3, max_sessions_per_key=2, idle_timeout_s=3.0,
        listen_idle_timeout_s=3.0, handshakes_per_minute=0, rate_limit_burst_s=1.0, max_audio_frame=8192,
        max_text_frame=1024,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    """Auth on (keys configured): 3 sessions, 2 per key, 8 KiB audio frames, 3 s idle."""
    server = ServerThread(settings(), EchoEngine()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def open_server() -> Iterator[ServerThread]:
    """Auth off (loopback, no keys): the frame-size limit still holds; the byte rate does not apply."""
    server = ServerThread(settings(api_keys=""), EchoEngine()).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_server() -> Iterator[ServerThread]:
    """A server of its own, for a drain (which cannot be undone)."""
    server = ServerThread(settings(drain_timeout_s=0.5), EchoEngine()).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
async def sessions_released(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """Each test starts with no live session on the shared servers (earlier closes are counted)."""
    for name in ("server", "open_server"):
        if name in request.fixturenames:
            shared: ServerThread = request.getfixturevalue(name)
            await until(lambda shared=shared: not shared.gateway.sessions)  # type: ignore[misc]
    yield


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the state lives on the server's thread: polled
            await asyncio.sleep(0.01)


async def refusal(url: str, **kwargs: Any) -> httpx.Response | Any:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url, **kwargs):
            pass
    return info.value.response


def audio(endpoint: Endpoint, seconds: float, frame: int = 8000) -> list[bytes | str]:
    """`seconds` of silence in the endpoint's format, `frame` bytes of audio a frame, as its client sends them."""
    data = b"\0" * int(endpoint.bytes_per_s * seconds)
    return [endpoint.frame(data[i : i + frame]) for i in range(0, len(data), frame)]


def sample(server: ServerThread, name: str, **labels: str) -> float:
    return server.gateway.metrics.registry.get_sample_value(name, labels) or 0.0


def refused_count(server: ServerThread, endpoint: Endpoint) -> float:
    return sample(server, "voxrelay_sessions_total", engine="echo", endpoint=endpoint.label, outcome="refused")


def error_count(server: ServerThread, endpoint: Endpoint, code: str) -> float:
    return sample(server, "voxrelay_errors_total", endpoint=endpoint.label, code=code)


# Admission: every refusal, on every endpoint, decided once and counted by endpoint.

# endpoint label -> refusal -> (HTTP status, the code counted in voxrelay_errors_total)
REFUSALS = {
    "stt-stream": {
        "credentials": (401, "unauthorized"), "origin": (403, "forbidden"), "rate": (429, "rate_limited"),
        "key_cap": (429, "limit_exceeded"), "global_cap": (503, "limit_exceeded"), "draining": (503, "draining"),
    },
    "v1-listen": {
        "credentials": (401, "INVALID_AUTH"), "origin": (403, "FORBIDDEN"), "rate": (429, "TOO_MANY_REQUESTS"),
        "key_cap": (429, "TOO_MANY_REQUESTS"), "global_cap": (429, "TOO_MANY_REQUESTS"),
        "draining": (503, "SERVICE_UNAVAILABLE"),
    },
}
REFUSALS["v1-realtime"] = REFUSALS["stt-stream"]  # /stt-stream's decisions, in OpenAI's JSON error shape


async def expect_refusal(server: ServerThread, endpoint: Endpoint, kind: str, **connect: Any) -> httpx.Response | Any:
    status, code = REFUSALS[endpoint.label][kind]
    refused, errors = refused_count(server, endpoint), error_count(server, endpoint, code)
    response = await refusal(endpoint.url(server), **connect)
    assert response.status_code == status, response.body
    assert refused_count(server, endpoint) == refused + 1
    assert error_count(server, endpoint, code) == errors + 1
    return response


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_no_key_and_a_bad_key_are_refused(server: ServerThread, endpoint: Endpoint) -> None:
    await expect_refusal(server, endpoint, "credentials")
    response = await expect_refusal(server, endpoint, "credentials", additional_headers=endpoint.headers("wrong"))
    assert b"wrong" not in response.body


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_foreign_origin_is_refused(server: ServerThread, endpoint: Endpoint) -> None:
    await expect_refusal(
        server, endpoint, "origin", origin="https://evil.example", additional_headers=endpoint.headers(KEY)
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_the_handshake_rate_is_limited(
    server: ServerThread, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.gateway.gatekeeper, "handshakes", HandshakeLimiter(per_minute=1, burst=1))
    await expect_refusal(server, endpoint, "credentials")  # takes the one handshake of the burst
    response = await expect_refusal(server, endpoint, "rate", additional_headers=endpoint.headers(KEY))
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_the_per_key_cap_holds_across_endpoints(server: ServerThread, endpoint: Endpoint) -> None:
    other = LISTEN if endpoint is STT else STT
    async with websockets.connect(other.url(server), additional_headers=other.headers(KEY)), websockets.connect(
        endpoint.url(server), additional_headers=endpoint.headers(KEY)
    ):
        response = await expect_refusal(server, endpoint, "key_cap", additional_headers=endpoint.headers(KEY))
        assert response.headers["Retry-After"]
        async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(OTHER)) as ws:
            await endpoint.start(ws)
            await send_all(ws, [*audio(endpoint, 0.2), endpoint.stop])
            await read_all(ws, endpoint)
        assert ws.close_code == 1000  # another key is not affected


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_the_global_cap_holds_across_endpoints(server: ServerThread, endpoint: Endpoint) -> None:
    async with websockets.connect(STT.url(server), additional_headers=STT.headers(KEY)), websockets.connect(
        LISTEN.url(server), additional_headers=LISTEN.headers(KEY)
    ), websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(OTHER)):
        await until(lambda: len(server.gateway.sessions) == 3)
        await expect_refusal(server, endpoint, "global_cap", additional_headers=endpoint.headers(OTHER))


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_draining_server_refuses(
    server: ServerThread, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.gateway.drainer, "draining", True)
    response = await expect_refusal(server, endpoint, "draining", additional_headers=endpoint.headers(KEY))
    assert response.headers["Retry-After"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_engine_not_ready_refuses(
    server: ServerThread, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.gateway.engine, "started", False)
    refused = refused_count(server, endpoint)
    if endpoint is STT:  # /stt-stream's form: an error after the upgrade, close 1013 (try later)
        async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(KEY)) as ws:
            messages = await read_all(ws)
        assert endpoint.errors(messages)[0]["code"] == "engine_unavailable" and ws.close_code == 1013
        assert error_count(server, endpoint, "engine_unavailable") >= 1
    else:  # Deepgram's and OpenAI's: HTTP 503 before the upgrade
        response = await refusal(endpoint.url(server), additional_headers=endpoint.headers(KEY))
        assert response.status_code == 503 and b"starting" in response.body
    assert refused_count(server, endpoint) == refused + 1


# Limits: frame size first (1009, auth on or off), byte rate (1008, batch exception), idle, duration.


async def run_session(server: ServerThread, endpoint: Endpoint, frames: list[bytes | str], query: str = "",
                      key: str | None = KEY) -> tuple[list[dict[str, Any]], int | None, str]:
    async with websockets.connect(endpoint.url(server, query), additional_headers=endpoint.headers(key),
                                  max_size=None) as ws:
        await endpoint.start(ws)
        await send_all(ws, frames)
        messages = await read_all(ws, endpoint)
    return messages, ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("auth", ["auth-on", "auth-off"])
@pytest.mark.parametrize("size", [8193, 200 * 1024])
async def test_an_oversize_frame_closes_1009(
    server: ServerThread, open_server: ServerThread, endpoint: Endpoint, auth: str, size: int
) -> None:
    target, key = (server, KEY) if auth == "auth-on" else (open_server, None)
    messages, code, _ = await run_session(target, endpoint, [endpoint.frame(b"\0" * size), endpoint.stop], key=key)
    assert code == 1009
    if size == 8193:  # within the server's read ceiling: the endpoint says why before closing
        (error,) = endpoint.errors(messages)
        assert "8192" in endpoint.error_text(error)
    limits = FrameLimits(1024, 8192)
    text_limit = realtime_frame_limits(limits).max_text_frame if endpoint is REALTIME else limits.max_text_frame
    _, text_code, _ = await run_session(target, endpoint, ["{" + " " * text_limit + "}"], key=key)
    assert text_code == 1009
    if endpoint is REALTIME:  # an append of a full audio frame is not too large a text frame
        messages, _, _ = await run_session(target, endpoint, [endpoint.frame(b"\0" * 8192), endpoint.stop], key=key)
        assert endpoint.finals(messages) == ["heard 8192 bytes"] and not endpoint.errors(messages)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_audio_faster_than_real_time_closes_1008_unless_batch(server: ServerThread, endpoint: Endpoint) -> None:
    errors = error_count(server, endpoint, "limit_exceeded")
    messages, code, _ = await run_session(server, endpoint, [*audio(endpoint, 10), endpoint.stop])  # 10 s at once
    assert code == 1008
    (error,) = endpoint.errors(messages)
    assert "real time" in endpoint.error_text(error)
    assert error_count(server, endpoint, "limit_exceeded") == errors + 1
    messages, code, _ = await run_session(server, endpoint, [*audio(endpoint, 10), endpoint.stop], query="batch=true")
    assert code == 1000 and not endpoint.errors(messages)
    assert endpoint.finals(messages)[-1] == f"heard {10 * endpoint.bytes_per_s} bytes"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_the_byte_rate_does_not_apply_with_auth_off(open_server: ServerThread, endpoint: Endpoint) -> None:
    messages, code, _ = await run_session(open_server, endpoint, [*audio(endpoint, 10), endpoint.stop], key=None)
    assert code == 1000 and not endpoint.errors(messages)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_idle_session_is_closed(server: ServerThread, endpoint: Endpoint) -> None:
    errors = error_count(server, endpoint, "limit_exceeded")
    messages, code, reason = await run_session(server, endpoint, [])
    if endpoint is not LISTEN:
        assert code == 1008 and "no audio" in endpoint.error_text(endpoint.errors(messages)[0])
    else:  # Deepgram's NET-0001, with no Error message
        assert code == 1011 and reason.startswith("NET-0001") and not endpoint.errors(messages)
    await until(lambda: error_count(server, endpoint, "limit_exceeded") == errors + 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_the_maximum_duration_closes_1008(
    server: ServerThread, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server.gateway.settings, "max_session_s", 1.0)
    async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(KEY)) as ws:
        await endpoint.start(ws)
        reader = asyncio.create_task(read_all(ws, endpoint))
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:  # stream at real time past the limit
                    await ws.send(endpoint.frame(b"\0" * 3200))
                    await asyncio.sleep(0.1)
        messages = await reader
    assert ws.close_code == 1008
    assert "maximum duration" in endpoint.error_text(endpoint.errors(messages)[0])


# Close codes that are not limits: 1000 (stop), 1011 (engine failure), 1012 (drain deadline).


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_engine_failure_closes_1011(server: ServerThread, endpoint: Endpoint) -> None:
    errors = error_count(server, endpoint, "engine_error")
    messages, code, _ = await run_session(server, endpoint, [endpoint.frame(b"FAIL" + b"\0" * 3196)])
    assert code == 1011 and "broke" in endpoint.error_text(endpoint.errors(messages)[0])
    await until(lambda: error_count(server, endpoint, "engine_error") == errors + 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_drain_delivers_every_frame_read_then_closes_1000(
    fresh_server: ServerThread, endpoint: Endpoint
) -> None:
    async with websockets.connect(endpoint.url(fresh_server), additional_headers=endpoint.headers(KEY)) as ws:
        await endpoint.start(ws)
        await send_all(ws, audio(endpoint, 0.5, frame=1600))
        connection = await until_connection(fresh_server)
        await until(lambda: connection.codec.audio_bytes == endpoint.bytes_per_s // 2)  # read, maybe not yet fed
        async with httpx.AsyncClient() as client:
            result = (await client.post(fresh_server.http("/admin/drain?wait=true"), timeout=20)).json()
        messages = await read_all(ws, endpoint)
    assert result["forced"] == 0 and ws.close_code == 1000
    assert endpoint.finals(messages)[-1] == f"heard {endpoint.bytes_per_s // 2} bytes"
    if endpoint is STT:
        assert any(m["type"] == "warning" and m["code"] == "draining" for m in messages)
        assert messages[-1]["type"] == "stopped"
    elif endpoint is REALTIME:  # no warning event in OpenAI's protocol: the open turn completes, then 1000
        assert messages[-1]["type"] == "conversation.item.input_audio_transcription.completed"
    else:
        assert messages[-1]["type"] == "Metadata"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_the_drain_deadline_closes_1012(fresh_server: ServerThread, endpoint: Endpoint) -> None:
    async with websockets.connect(endpoint.url(fresh_server), additional_headers=endpoint.headers(KEY)) as ws:
        await endpoint.start(ws)
        await ws.send(endpoint.frame(b"HANG" + b"\0" * 3196))  # this stream never flushes on close
        connection = await until_connection(fresh_server)
        await until(lambda: connection.codec.audio_bytes == 3200)
        async with httpx.AsyncClient() as client:
            result = (await client.post(fresh_server.http("/admin/drain?wait=true"), timeout=20)).json()
        await read_all(ws, endpoint)
    assert result["forced"] == 1 and ws.close_code == 1012


async def until_connection(server: ServerThread) -> Any:
    await until(lambda: len(server.gateway.drainer.connections) == 1)
    return next(iter(server.gateway.drainer.connections))


# Metrics: one session's latencies, audio and outcome, labelled by endpoint.


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_every_metric_is_recorded_by_endpoint(server: ServerThread, endpoint: Endpoint) -> None:
    labels = {"engine": "echo", "endpoint": endpoint.label}
    first = sample(server, "voxrelay_first_interim_seconds_count", **labels)
    after_stop = sample(server, "voxrelay_final_after_stop_seconds_count", **labels)
    seconds = sample(server, "voxrelay_audio_seconds_total", **labels)
    stopped = sample(server, "voxrelay_sessions_total", **labels, outcome="stopped")
    disconnected = sample(server, "voxrelay_sessions_total", **labels, outcome="disconnected")
    errored = sample(server, "voxrelay_sessions_total", **labels, outcome="error")
    bad_request = error_count(server, endpoint, "bad_request")

    # A session that stops: first interim, final after stop, 0.5 s of audio, outcome stopped;
    # a malformed text frame on the way is survivable and counted as bad_request. OpenAI's protocol has
    # no stop: its client closes once the commit completed, so the session ends as `disconnected`, and
    # the final after its commit is what "final after stop" times.
    messages, code, _ = await run_session(server, endpoint, [*audio(endpoint, 0.5), "{not json", endpoint.stop])
    assert code == 1000 and endpoint.finals(messages)[-1] == f"heard {endpoint.bytes_per_s // 2} bytes"
    if endpoint is REALTIME:
        stopped, disconnected = disconnected, disconnected + 1
    await until(lambda: sample(server, "voxrelay_sessions_total", **labels,
                               outcome="disconnected" if endpoint is REALTIME else "stopped") == stopped + 1)
    assert sample(server, "voxrelay_first_interim_seconds_count", **labels) == first + 1
    assert sample(server, "voxrelay_final_after_stop_seconds_count", **labels) == after_stop + 1
    assert sample(server, "voxrelay_audio_seconds_total", **labels) == pytest.approx(seconds + 0.5)
    assert error_count(server, endpoint, "bad_request") == bad_request + 1

    # A client that goes away, and a session the server ends with an error.
    async with websockets.connect(endpoint.url(server), additional_headers=endpoint.headers(KEY)) as ws:
        await endpoint.start(ws)
    await until(lambda: sample(server, "voxrelay_sessions_total", **labels, outcome="disconnected") == disconnected + 1)
    await run_session(server, endpoint, [endpoint.frame(b"FAIL")])
    await until(lambda: sample(server, "voxrelay_sessions_total", **labels, outcome="error") == errored + 1)
