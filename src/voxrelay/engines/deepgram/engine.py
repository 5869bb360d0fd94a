"""Engine `deepgram`: Deepgram's Live API through the official `deepgram-sdk` (7.x).

The only module that imports `deepgram`; its types stop here. One upstream WebSocket
per stream, owned by the stream's `_run` task:

- The SDK builds each connection (URL from the options, auth headers) and its control
  messages; the bytes travel on `WebSocketTransport` (engines/websocket_transport.py),
  plugged into the SDK's `transport_factory` hook: websockets' asyncio client, without
  permessage-deflate.
- `send_audio`/`finalize`/`close` queue items for the sender task, so Finalize and
  CloseStream always follow the audio sent before them. After `keepalive_s` without
  anything to send (a silent client), a per-connection watchdog timer queues KeepAlive,
  so Deepgram never closes an idle stream with NET-0001; the same timer fails a send
  that an upstream which stopped reading holds for `send_timeout_s`.
- The reader task reads the transport's JSON messages and maps them to engine events
  (Results -> interim/final, SpeechStarted, UtteranceEnd). It reads the JSON itself rather
  than the SDK's pydantic models: those cost a quarter of the gateway's CPU under load.
- `close()` sends Finalize then CloseStream and keeps reading until Deepgram closes
  the socket (at most `close_timeout_s`), so the last words are never lost
  (deepgram-js-sdk #198, pipecat #5347). `abort()` cancels the task, which closes the
  upstream socket on its way out.
- Upstream failures (HTTP 401 at the handshake, close 1011 NET-0001/NET-0000, DATA-0000,
  a dropped connection, malformed messages) become `EngineError`s with clear messages.
- Retryable closes (1006 dropped, 1011, 1012, 1013, 1014, network errors) reconnect with
  full-jitter backoff, at most `max_reconnects` times in a row; the client gets an
  `EngineWarning` (`reconnecting`). Linear16 audio not yet covered by a final is kept
  (`replay.ReplayBuffer`, at most `replay_s`, drop-oldest) and re-sent, and the new
  connection's timestamps are shifted back into session time. For webm/ogg the container
  header is re-sent first, then the stream goes on (the audio in flight is the gap).

The API key comes from `DEEPGRAM_API_KEY` in the server's environment only. It is kept
out of reprs and every message this module writes; the SDK masks it in its own
exceptions and in the `websockets` handshake logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, Literal

import numpy as np

from voxrelay.engines.base import (
    Capabilities,
    Engine,
    EngineError,
    EngineEvent,
    EngineFailure,
    EngineStream,
    EngineWarning,
    FinalResult,
    InterimResult,
    SpeechStarted,
    StreamConfig,
    UtteranceEnd,
    Word,
)
from voxrelay.engines.deepgram.replay import ReplayBuffer, backoff_s, container_header, retryable
from voxrelay.engines.deepgram.transport import WebSocketTransport, claim_transport
from voxrelay.tasks import cancel_and_wait

try:
    import httpx
    import websockets.exceptions
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
    from deepgram.transport import restore_transport
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        f"the deepgram engine needs the {exc.name!r} package: pip install 'voxrelay[deepgram]'", name=exc.name
    ) from exc

__all__ = ["DeepgramEngine", "DeepgramStream"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "nova-3"
_FINALIZE = "finalize"
_CLOSE = "close"
_KEEPALIVE = "keepalive"
_END = object()


class _Watchdog:
    """One timer per upstream connection: KeepAlive for a silent stream, and the stalled-send check.

    A timeout around every send (a task and an `asyncio.wait` per audio frame) cost more
    than the send itself at a thousand streams; this timer fires about once per `keepalive_s`.
    """

    def __init__(self, stream: DeepgramStream, sender: asyncio.Task[None]) -> None:
        self._stream = stream
        self._sender = sender
        self._loop = asyncio.get_running_loop()
        self.stalled = False
        self._handle = self._loop.call_later(min(stream._engine.keepalive_s, stream._engine.send_timeout_s), self._check)

    def cancel(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        stream, engine = self._stream, self._stream._engine
        if self._sender.done():
            return
        now = self._loop.time()
        began = stream._send_began
        if began is not None:
            if now - began >= engine.send_timeout_s:
                self.stalled = True  # the upstream stopped reading (TCP backpressure)
                self._sender.cancel()
                return
            due = min(began + engine.send_timeout_s, now + engine.keepalive_s)
        elif now - stream._last_sent >= engine.keepalive_s:
            stream._queue_keep_alive()
            due = now + engine.keepalive_s
        else:
            due = stream._last_sent + engine.keepalive_s
        self._handle = self._loop.call_at(due, self._check)


_engines_started = 0  # the SDK's transport hook is global: undone when the last engine stops


class _Stalled(Exception):
    """The upstream stopped reading (TCP backpressure): a send did not complete in time."""


class DeepgramEngine(Engine):
    """Deepgram's cloud (or a self-hosted/compatible server at `url`) through `deepgram-sdk`.

    Args:
        model: the default model (`nova-3`); a client's configure may name another.
        url: the upstream base URL, e.g. `ws://127.0.0.1:8765` (VOXRELAY_DEEPGRAM_URL);
            None = Deepgram's cloud.
        keepalive_s: send KeepAlive after this long with nothing else to send.
        close_timeout_s: after CloseStream, how long to wait for Deepgram to close.
        open_timeout_s: how long the upstream handshake may take.
        send_timeout_s: how long one send may wait for an upstream that stopped reading.

    Raises:
        EngineFailure: DEEPGRAM_API_KEY is not set.
    """

    name = "deepgram"
    # Deepgram decodes the client's container or PCM itself and honours any endpointing.
    capabilities = Capabilities(raw_audio=True, min_endpointing_ms=0)

    def __init__(
        self,
        model: str | None = None,
        url: str | None = None,
        keepalive_s: float = 5.0,
        close_timeout_s: float = 10.0,
        open_timeout_s: float = 10.0,
        send_timeout_s: float = 10.0,
        max_reconnects: int = 5,
        reconnect_base_s: float = 0.5,
        reconnect_cap_s: float = 10.0,
        replay_s: float = 30.0,
        **_: Any,
    ) -> None:
        key = os.environ.get("DEEPGRAM_API_KEY", "").strip()
        if not key:
            raise EngineFailure(
                "engine 'deepgram' needs a Deepgram API key: set DEEPGRAM_API_KEY in the server's environment "
                "(it stays on the server and is never sent to clients)"
            )
        super().__init__(model or DEFAULT_MODEL)
        self.__key = key
        self._url = url
        self._environment = _environment(url)
        self.keepalive_s = keepalive_s
        self.close_timeout_s = close_timeout_s
        self.open_timeout_s = open_timeout_s
        self.send_timeout_s = send_timeout_s
        self.max_reconnects = max_reconnects
        self.reconnect_base_s = reconnect_base_s
        self.reconnect_cap_s = reconnect_cap_s
        self.replay_s = replay_s
        self.reconnects = 0  # upstream reconnects, all streams (for tests and reports)
        self._client: AsyncDeepgramClient | None = None
        self._httpx: httpx.AsyncClient | None = None
        self._streams: set[DeepgramStream] = set()

    def __repr__(self) -> str:
        return f"DeepgramEngine(model={self.model_name!r}, url={self._url or 'deepgram cloud'!r})"

    @property
    def active_streams(self) -> int:
        """Streams whose upstream connection is open or being opened."""
        return len(self._streams)

    async def start(self) -> None:
        global _engines_started
        # The SDK's HTTP client is unused for streaming; ours is closed in stop().
        self._httpx = httpx.AsyncClient()
        try:
            self._client = AsyncDeepgramClient(
                api_key=self.__key, environment=self._environment, httpx_client=self._httpx, transport_factory=WebSocketTransport
            )
        except RuntimeError as exc:  # another transport factory is installed in this process
            raise EngineFailure(f"cannot use deepgram-sdk's transport hook: {exc}") from None
        _cache_headers(self._client)
        _engines_started += 1
        self.started = True

    async def open(self, config: StreamConfig) -> DeepgramStream:
        if not self.started or self._client is None:
            raise EngineFailure("the deepgram engine is not started")
        stream = DeepgramStream(self, self._client, _options(config, self.model_name), config)
        await stream.connect()
        return stream

    async def stop(self) -> None:
        global _engines_started
        for stream in list(self._streams):
            await stream.abort()
        if self._httpx is not None:
            await self._httpx.aclose()
        if self.started:
            _engines_started -= 1
            if _engines_started == 0:
                restore_transport()
        self.started = False

    # Helpers for streams.

    def scrub(self, text: str) -> str:
        """`text` with the API key masked (for anything that may reach a client or a log)."""
        return text.replace(self.__key, "[redacted]")

    def report_reconnect(self, result: Literal["ok", "failed", "gave_up"]) -> None:
        self.observer.upstream_reconnect(result)

    def track(self, stream: DeepgramStream, alive: bool) -> None:
        if alive:
            self._streams.add(stream)
        else:
            self._streams.discard(stream)


def _cache_headers(client: AsyncDeepgramClient) -> None:
    """Compute the SDK's connection headers once instead of at every connect.

    deepgram-sdk 7.x rebuilds them per connection, reading its own version from the
    installed package's metadata each time: ~0.8 ms a connect, a quarter of the gateway's
    CPU while a thousand clients connect. They never change for a client (the key is
    fixed). The SDK itself overrides this method per instance for bearer tokens.
    """
    wrapper = getattr(client, "_client_wrapper", None)
    if wrapper is None or not callable(getattr(wrapper, "get_headers", None)):
        return  # a release that moved it: headers are built per connect, as the SDK does
    headers = wrapper.get_headers()
    wrapper.get_headers = lambda: dict(headers)


def _environment(url: str | None) -> DeepgramClientEnvironment:
    """An SDK environment for a base URL; `ws(s)://` and `http(s)://` both work, a `/v1/listen` suffix too."""
    if not url:
        return DeepgramClientEnvironment.PRODUCTION
    base = url.strip().rstrip("/")
    if base.endswith("/v1/listen"):
        base = base[: -len("/v1/listen")]
    scheme, sep, rest = base.partition("://")
    if not sep or scheme not in ("ws", "wss", "http", "https"):
        raise EngineFailure(f"VOXRELAY_DEEPGRAM_URL must start with ws://, wss://, http:// or https:// (got {url!r})")
    secure = scheme in ("wss", "https")
    ws_url = f"{'wss' if secure else 'ws'}://{rest}"
    http_url = f"{'https' if secure else 'http'}://{rest}"
    return DeepgramClientEnvironment(base=http_url, production=ws_url, agent=ws_url, agent_rest=http_url)


def _options(config: StreamConfig, default_model: str) -> dict[str, Any]:
    """Deepgram query options for a stream (the SDK writes booleans as true/false, lists as repeats)."""
    model = config.model or default_model
    options: dict[str, Any] = {
        "model": model,
        "interim_results": config.interim_results,
        "endpointing": config.endpointing_ms,
        "vad_events": config.vad_events,
        "punctuate": config.punctuate,
        "smart_format": config.smart_format,
    }
    if config.encoding == "linear16":
        options.update(encoding="linear16", sample_rate=config.sample_rate, channels=config.channels)
    elif config.encoding in ("opus", "ogg-opus"):
        options.update(encoding=config.encoding, sample_rate=config.sample_rate)
    elif config.encoding not in ("webm", "ogg"):  # containers: Deepgram reads the header
        raise EngineFailure(f"the deepgram engine cannot take {config.encoding!r} audio", code="unsupported_audio")
    if config.language:
        options["language"] = config.language
    if config.utterance_end_ms is not None:
        options["utterance_end_ms"] = config.utterance_end_ms
    if config.keyterms:
        # Nova-3 takes keyterm; older models take keywords.
        options["keyterm" if model.startswith("nova-3") else "keywords"] = list(config.keyterms)
    return options


class DeepgramStream(EngineStream):
    """One session's upstream connection. Created by `DeepgramEngine.open`."""

    def __init__(
        self, engine: DeepgramEngine, client: AsyncDeepgramClient, options: dict[str, Any], config: StreamConfig
    ) -> None:
        self._engine = engine
        self._encoding = config.encoding
        self._word_timings = config.word_timings
        self._raw = config.encoding == "linear16"
        frame = 2 * config.channels
        self._replay = ReplayBuffer(config.sample_rate * frame, engine.replay_s, frame) if self._raw else None
        self._header: bytes | None = None  # webm/ogg: re-sent first after a reconnect
        self._head = bytearray()
        self._offset_s = 0.0  # session time of the current connection's t=0
        self._last_end = 0.0  # latest result end, in session time (the offset for containers)
        self._close_sent = False
        self._heard = False  # the current connection answered something
        self.reconnects = 0
        self._client = client
        self._options = options
        self._inbox: asyncio.Queue[bytes | str] = asyncio.Queue()
        self._outbox: asyncio.Queue[EngineEvent | object] = asyncio.Queue()
        self._carry: bytes | str | None = None  # taken from the inbox but not sent when a connection ended
        self._closing = False  # close() was called: CloseStream follows the queued audio
        self._finished = False  # no more events will be produced
        self._aborted = False
        self._sending = True
        self._transport: WebSocketTransport | None = None  # the current connection's (claimed as it is made)
        self._send_began: float | None = None  # loop time a send started; None between sends (watchdog)
        self._last_sent = 0.0  # loop time of the last completed send (watchdog: KeepAlive)
        self._task: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Open the upstream socket; raises `EngineFailure` with a clear message if Deepgram refuses."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._engine.track(self, True)
        self._task = asyncio.create_task(self._run(ready), name="deepgram-stream")
        try:
            await asyncio.wait_for(asyncio.shield(ready), self._engine.open_timeout_s)
        except asyncio.TimeoutError:
            await self.abort()
            raise EngineFailure(
                f"Deepgram did not answer within {self._engine.open_timeout_s:g} s; try again later"
            ) from None
        except BaseException:
            await self.abort()
            raise

    # EngineStream interface.

    async def send_audio(self, audio: bytes | np.ndarray) -> None:
        if not isinstance(audio, bytes):
            raise TypeError("the deepgram engine takes the client's audio bytes")
        if not self._closing and not self._finished and audio:
            self._inbox.put_nowait(audio)

    async def finalize(self) -> None:
        if not self._closing and not self._finished:
            self._inbox.put_nowait(_FINALIZE)

    async def close(self) -> None:
        if not self._closing and not self._finished:
            self._closing = True
            self._inbox.put_nowait(_CLOSE)

    async def abort(self) -> None:
        self._aborted = True
        if self._transport is not None:
            self._transport.abort()  # at once: no close handshake, no flush
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._end()

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            event = await self._outbox.get()
            if event is _END:
                return
            yield event  # type: ignore[misc]

    # The stream's task: owns the upstream connection from handshake to close.

    async def _run(self, ready: asyncio.Future[None]) -> None:
        engine = self._engine
        failures = 0
        claim_transport.set(self._claim_transport)  # the transports this task's connects make are this stream's
        try:
            while True:
                retry: BaseException | None = None
                self._heard = False
                try:
                    async with self._client.listen.v1.connect(**self._options) as connection:
                        transport = self._transport
                        if transport is None:
                            raise EngineFailure("deepgram-sdk did not use voxrelay's transport (an SDK change?)")
                        await transport.open(engine.open_timeout_s)
                        backlog: list[bytes] = []
                        if ready.done():
                            backlog = self._resume()
                        else:
                            ready.set_result(None)
                        retry = await self._serve(connection, transport, backlog)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not ready.done():
                        ready.set_exception(self._handshake_failure(exc))
                        return
                    if not self._retryable(exc):
                        log.warning("deepgram stream failed: %s", engine.scrub(repr(exc)))
                        failure = self._handshake_failure(exc)
                        self._emit(EngineError("engine_error", engine.scrub(f"the Deepgram stream failed: {failure}")))
                        return
                    retry = exc
                if retry is None or self._aborted:
                    return
                # A connection that answered anything worked: the attempt budget starts again.
                failures = 1 if self._heard else failures + 1
                if failures > 1:
                    engine.report_reconnect("failed")  # the previous attempt connected to nothing useful
                why = self._describe(retry)
                if failures > engine.max_reconnects:
                    engine.report_reconnect("gave_up")
                    self._emit(
                        EngineError(
                            "engine_error",
                            f"lost the connection to Deepgram ({why}) and {engine.max_reconnects} reconnects failed",
                        )
                    )
                    return
                log.warning("deepgram connection lost (%s); reconnect %d of %d", why, failures, engine.max_reconnects)
                self._emit(
                    EngineWarning(
                        "reconnecting",
                        f"the connection to the speech service was lost ({why}); reconnecting "
                        f"(attempt {failures} of {engine.max_reconnects}); buffered audio will be re-sent",
                    )
                )
                await asyncio.sleep(backoff_s(failures - 1, engine.reconnect_base_s, engine.reconnect_cap_s))
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        finally:
            engine.track(self, False)
            self._end()

    def _claim_transport(self, transport: WebSocketTransport) -> None:
        self._transport = transport

    def _resume(self) -> list[bytes]:
        """A new upstream connection: what to re-send first, of what the old one may have lost."""
        self.reconnects += 1
        self._engine.reconnects += 1
        self._engine.report_reconnect("ok")
        self._sending = True
        if self._close_sent:
            self._inbox.put_nowait(_CLOSE)  # CloseStream may not have arrived: send it again
        if self._replay is not None:
            self._offset_s = self._replay.offset_s
            log.info(
                "deepgram reconnected: replaying %.2f s from %.2f s (%d bytes dropped so far)",
                len(self._replay) / self._replay.bytes_per_s,
                self._offset_s,
                self._replay.dropped_bytes,
            )
            return self._replay.chunks()  # as first sent: the upstream sees the same stream
        self._offset_s = self._last_end
        return [self._header] if self._header is not None else []

    @property
    def dropped_audio_s(self) -> float:
        """Audio that fell out of the replay buffer before a final covered it (lost words)."""
        return self._replay.dropped_bytes / self._replay.bytes_per_s if self._replay else 0.0

    def _retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, websockets.exceptions.ConnectionClosed):
            return retryable(exc.rcvd.code if exc.rcvd is not None else None)
        status = _refused_status(exc)
        if status is not None:
            return status in (500, 502, 503, 504)
        return isinstance(exc, (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidHandshake))

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, websockets.exceptions.ConnectionClosed):
            if exc.rcvd is None:
                return "connection dropped"
            return self._engine.scrub(f"closed {exc.rcvd.code} {exc.rcvd.reason}".strip())
        return self._engine.scrub(type(exc).__name__)

    def _record(self, audio: bytes) -> None:
        """Audio about to be sent: kept for a replay (linear16) or for its header (containers)."""
        if self._replay is not None:
            self._replay.append(audio)
        elif self._header is None and len(self._head) < 1 << 20:
            self._head += audio
            size = container_header(bytes(self._head), self._encoding)
            if size is not None:
                self._header = bytes(self._head[:size])
                self._head = bytearray()

    def _shift(self, event: EngineEvent) -> EngineEvent:
        """An event of the current connection, in session time."""
        offset = self._offset_s
        if offset and isinstance(event, (FinalResult, InterimResult)):
            words = tuple(dataclasses.replace(w, start=w.start + offset, end=w.end + offset) for w in event.words)
            event = dataclasses.replace(event, start=event.start + offset, end=event.end + offset, words=words)
        elif offset and isinstance(event, SpeechStarted):
            event = SpeechStarted(event.timestamp + offset)
        elif offset and isinstance(event, UtteranceEnd):
            event = UtteranceEnd(event.last_word_end + offset)
        if isinstance(event, FinalResult):
            self._last_end = max(self._last_end, event.end)
            if self._replay is not None:
                self._replay.acknowledge(event.end)
        return event

    async def _serve(self, connection: Any, transport: WebSocketTransport, backlog: list[bytes]) -> BaseException | None:
        """Run one upstream connection (`backlog` goes first); returns the failure if it is worth a reconnect."""
        errors: list[BaseException] = []
        reader = asyncio.create_task(self._read_loop(transport, errors), name="deepgram-read")
        sender = asyncio.create_task(self._send_loop(connection, backlog), name="deepgram-send")
        watchdog = _Watchdog(self, sender)
        timed_out = False
        send_error: BaseException | None = None
        try:
            await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
            if watchdog.stalled:
                send_error = _Stalled(f"Deepgram stopped accepting data for {self._engine.send_timeout_s:g} s")
            elif sender.done() and not sender.cancelled():
                send_error = sender.exception()
            if not reader.done() and send_error is None:
                # CloseStream is sent (or the upstream is gone): read until Deepgram closes.
                done, _ = await asyncio.wait({reader}, timeout=self._engine.close_timeout_s)
                timed_out = not done
        finally:
            self._sending = False
            watchdog.cancel()
            if watchdog.stalled:
                transport.abort()  # an upstream that stopped reading would stall the close handshake too
            await cancel_and_wait((sender, reader))
        if send_error is not None:
            log.warning("deepgram send failed: %s", self._engine.scrub(repr(send_error)))
            message = (
                str(send_error) if isinstance(send_error, _Stalled) else f"sending to Deepgram failed: {send_error}"
            )
            self._emit(EngineError("engine_error", self._engine.scrub(message)))
        elif timed_out:
            self._emit(
                EngineError(
                    "engine_error",
                    f"Deepgram did not close the stream within {self._engine.close_timeout_s:g} s "
                    "of the end of audio; later results are lost",
                    fatal=False,
                )
            )
        elif errors:
            if self._retryable(errors[0]) and not self._aborted and self._engine.max_reconnects > 0:
                return errors[0]
            self._emit(self._upstream_error(errors[0]))
        elif not self._closing:
            self._emit(EngineError("engine_error", "Deepgram closed the stream unexpectedly"))
        return None

    async def _send_loop(self, connection: Any, backlog: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        self._last_sent = loop.time()
        try:
            for chunk in backlog:  # a reconnect's replay (recorded already) or container header
                self._send_began = loop.time()
                await connection.send_media(chunk)
                self._send_began = None
            # `_sending` as well as cancellation: a cancel that lands as an awaited future
            # completes can be swallowed, and the loop must still end.
            while self._sending:
                item: bytes | str | None
                if self._carry is not None:
                    item, self._carry = self._carry, None
                else:
                    item = await self._inbox.get()
                if not self._sending:
                    # The connection is going away with an item in hand: it goes first on the next
                    # connection (dropping it here lost 100 ms of audio in the fault test).
                    self._carry = item
                    return
                # The watchdog reads these: a send in progress too long is a stalled upstream.
                self._send_began = loop.time()
                if isinstance(item, bytes):
                    self._record(item)
                    await connection.send_media(item)
                elif item == _KEEPALIVE:
                    await connection.send_keep_alive()
                elif item == _FINALIZE:
                    await connection.send_finalize()
                else:
                    self._close_sent = True
                    await connection.send_finalize()
                    await connection.send_close_stream()
                    return
                self._last_sent = self._send_began
                self._send_began = None
        except websockets.exceptions.ConnectionClosed:
            return  # the reader reports why
        finally:
            self._send_began = None

    def _queue_keep_alive(self) -> None:
        """Nothing was sent for `keepalive_s` (a silent client): queue a KeepAlive (called by the watchdog)."""
        if self._inbox.empty() and self._carry is None:
            self._inbox.put_nowait(_KEEPALIVE)

    async def _read_loop(self, transport: WebSocketTransport, errors: list[BaseException]) -> None:
        """Upstream messages -> engine events, until the upstream closes with 1000 (errors go to `errors`)."""
        try:
            async for raw in transport:
                if isinstance(raw, str):
                    self._on_message(json.loads(raw))
        except Exception as exc:  # a close other than 1000, a dropped connection, invalid JSON
            errors.append(exc)

    def _on_message(self, data: Any) -> None:
        kind = data.get("type") if isinstance(data, dict) else None
        try:
            event = _event(kind, data, self._word_timings)
        except Exception as exc:  # a malformed message is skipped, never the end of the stream
            log.warning("deepgram: unreadable %s message: %s", kind, type(exc).__name__)
            return
        self._heard = True
        if event is not None:
            self._emit(self._shift(event))
        elif kind == "Metadata":
            log.debug("deepgram stream metadata: request %s, %s s", data.get("request_id"), data.get("duration"))
        elif kind == "Error":
            text = self._engine.scrub(f"Deepgram reported an error: {data.get('description') or data.get('message')}")
            self._emit(EngineError("engine_error", text, fatal=False))

    def _emit(self, event: EngineEvent) -> None:
        if not self._finished and not self._aborted:
            self._outbox.put_nowait(event)

    def _end(self) -> None:
        if not self._finished:
            self._finished = True
            self._outbox.put_nowait(_END)

    # Failures -> clear messages.

    def _handshake_failure(self, exc: BaseException) -> EngineFailure:
        scrub = self._engine.scrub
        status = _refused_status(exc)
        if status is not None:
            if status in (401, 403):
                message = f"Deepgram refused the server's API key (HTTP {status}); check DEEPGRAM_API_KEY"
                return EngineFailure(message, code="engine_unavailable")
            if status == 400:
                return EngineFailure(
                    "Deepgram refused the stream options (HTTP 400); check model, language and audio format",
                    code="bad_request",
                )
            if status in (402, 429):
                return EngineFailure(
                    f"Deepgram refused the stream: limit or quota reached (HTTP {status})", code="limit_exceeded"
                )
            return EngineFailure(f"Deepgram refused the connection (HTTP {status})", code="engine_unavailable")
        if isinstance(exc, OSError):
            log.warning("cannot reach Deepgram at %s: %s", self._engine._environment.production, scrub(str(exc)))
            return EngineFailure(f"cannot reach Deepgram: {scrub(str(exc)) or type(exc).__name__}")
        log.warning("Deepgram handshake failed: %s", scrub(repr(exc)))
        return EngineFailure(f"could not open a Deepgram stream: {scrub(str(exc)) or type(exc).__name__}")

    def _upstream_error(self, exc: BaseException) -> EngineError:
        scrub = self._engine.scrub
        if isinstance(exc, websockets.exceptions.ConnectionClosed):
            received = exc.rcvd
            if received is None:
                return EngineError("engine_error", "the connection to Deepgram dropped; the last words may be lost")
            code, reason = received.code, scrub(received.reason)
            if reason.startswith("NET-0001"):
                return EngineError(
                    "engine_error", f"Deepgram closed the stream: no audio reached it in time ({reason})"
                )
            if reason.startswith("NET-0000"):
                return EngineError(
                    "engine_error",
                    f"Deepgram stopped answering and closed the stream ({reason}); "
                    "this often means it could not decode the audio",
                )
            if reason.startswith("DATA-"):
                return EngineError("unsupported_audio", f"Deepgram could not decode the audio ({reason})")
            return EngineError("engine_error", f"Deepgram closed the stream ({code}{': ' + reason if reason else ''})")
        if isinstance(exc, json.JSONDecodeError):
            return EngineError("engine_error", "Deepgram sent a message that is not valid JSON; the stream was closed")
        return EngineError("engine_error", scrub(f"the Deepgram stream failed: {type(exc).__name__}: {exc}"))


def _refused_status(exc: BaseException) -> int | None:
    """The HTTP status of a refused handshake, else None.

    The transport opens the socket, so a refusal is websockets' `InvalidStatus`: the SDK
    maps only its legacy client's refusals to `ApiError`, and those no longer happen.
    """
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return int(exc.response.status_code)
    return None


def _event(kind: str | None, data: dict[str, Any], with_words: bool = True) -> EngineEvent | None:
    """The engine event for an upstream message (Deepgram's JSON), or None for messages that map to none.

    Read straight from the JSON: building the SDK's pydantic models for every message cost
    about a quarter of the gateway's CPU at a few hundred proxied streams (docs/benchmarks.md).
    Words are mapped only `with_words` (streams opened with `word_timings`).
    """
    if kind == "Results":
        alternatives = data["channel"]["alternatives"]
        best = alternatives[0] if alternatives else {}
        words = tuple(
            Word(
                w["word"],
                float(w["start"]),
                float(w["end"]),
                float(w.get("confidence") or 0.0),
                w.get("punctuated_word") or w["word"],
            )
            for w in (best.get("words") or () if with_words else ())
        )
        start = float(data["start"])
        end = start + float(data["duration"])
        transcript = best.get("transcript") or ""
        confidence = float(best.get("confidence") or 0.0)
        if data.get("is_final"):
            return FinalResult(
                transcript,
                start,
                end,
                speech_final=bool(data.get("speech_final")),
                from_finalize=bool(data.get("from_finalize")),
                confidence=confidence,
                words=words,
            )
        return InterimResult(transcript, start, end, confidence, words)
    if kind == "SpeechStarted":
        return SpeechStarted(float(data["timestamp"]))
    if kind == "UtteranceEnd":
        return UtteranceEnd(float(data["last_word_end"]))
    return None
