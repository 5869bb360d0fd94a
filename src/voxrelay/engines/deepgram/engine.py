"""Engine `deepgram`: Deepgram's Live API through the official `deepgram-sdk` (7.x).

This package is the only one that imports `deepgram`; its types stop here. The modules:

- `engine`: `DeepgramEngine` (start, open, stop; the API key and `scrub`), and the
  mapping of a stream's config to Deepgram's query options.
- `files`: whole-file transcription through Deepgram's pre-recorded API (`transcribe_file`).
- `stream`: `DeepgramStream`, one session's upstream connection: reader, KeepAlive/stall
  `watchdog`, close handshake, reconnect loop; `sender`: what it sends, in order.
- `events`: Deepgram's JSON -> engine events (pure). `failures`: which failures are
  retried, and the messages clients read. `replay`: the reconnect policy and buffers.
- `transport`: the WebSocket transport plugged into the SDK's `transport_factory` hook
  (websockets' asyncio client, without permessage-deflate).

What the SDK builds per connection is built once here instead (a relay pays it at every
connect and on every message): the URL and headers for a set of options
(`upstream_target`: the SDK builds them the first time it sees those options), the
proxy (from the environment, at `start()`), and the control messages' JSON (from the
SDK's models, `CONTROL`). Streams then send on websockets' connection directly.

Call order: `DeepgramEngine(...)`, `await start()`, `await open(config)` per session (a
connected `DeepgramStream`), `await stop()` (aborts the streams left).

The API key comes from `DEEPGRAM_API_KEY` in the server's environment only. It is kept
out of reprs and every message this package writes; the SDK masks it in its own
exceptions and in the `websockets` handshake logs.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from voxrelay.engines.base import Capabilities, Engine, EngineFailure, StreamConfig
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.engines.deepgram.stream import DeepgramStream
from voxrelay.engines.deepgram.transport import ControlTexts, WebSocketTransport, claim_transport
from voxrelay.engines.files import FileRequest, FileTranscript

try:
    import httpx
    from deepgram import AsyncDeepgramClient, DeepgramClientEnvironment
    from deepgram.listen.v1.types import ListenV1CloseStream, ListenV1Finalize, ListenV1KeepAlive
    from deepgram.transport import restore_transport
    from websockets.proxy import get_proxy
    from websockets.uri import parse_uri
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise ModuleNotFoundError(
        f"the deepgram engine needs the {exc.name!r} package: pip install 'voxrelay[deepgram]'", name=exc.name
    ) from exc

from voxrelay.engines.deepgram import files  # imports deepgram: after the guard above

__all__ = ["DeepgramEngine", "DeepgramStream"]

DEFAULT_MODEL = "nova-3"

_engines_started = 0  # the SDK's transport hook is global: undone when the last engine stops

# The control messages as the SDK's `send_finalize`/`send_close_stream`/`send_keep_alive` write them.
CONTROL = ControlTexts(
    finalize=json.dumps(ListenV1Finalize(type="Finalize").dict()),
    close_stream=json.dumps(ListenV1CloseStream(type="CloseStream").dict()),
    keep_alive=json.dumps(ListenV1KeepAlive(type="KeepAlive").dict()),
)

_TARGETS_KEPT = 256  # distinct stream options whose URL is kept (keyterms make many; the oldest goes first)


class DeepgramEngine(Engine):
    """Deepgram's cloud (or a self-hosted/compatible server at `url`) through `deepgram-sdk`.

    Args:
        settings: the model, upstream URL, timeouts and reconnect policy (`DeepgramSettings`,
            env `VOXRELAY_DEEPGRAM_*`); None = `DeepgramSettings()` from the environment.

    Raises:
        EngineFailure: DEEPGRAM_API_KEY is not set.
    """

    name = "deepgram"
    # Deepgram decodes the client's container or PCM itself (files too) and honours any endpointing.
    capabilities = Capabilities(raw_audio=True, min_endpointing_ms=0, file_transcription=True)

    def __init__(self, settings: DeepgramSettings | None = None) -> None:
        settings = settings if settings is not None else DeepgramSettings()
        key = os.environ.get("DEEPGRAM_API_KEY", "").strip()
        if not key:
            raise EngineFailure(
                "engine 'deepgram' needs a Deepgram API key: set DEEPGRAM_API_KEY in the server's environment "
                "(it stays on the server and is never sent to clients)"
            )
        super().__init__(settings.model)
        self.settings = settings
        self.__key = key
        self._url = settings.url
        self._environment = _environment(settings.url)
        self.keepalive_s = settings.keepalive_s
        self.close_timeout_s = settings.close_timeout_s
        self.open_timeout_s = settings.open_timeout_s
        self.send_timeout_s = settings.send_timeout_s
        self.max_reconnects = settings.max_reconnects
        self.reconnect_base_s = settings.reconnect_base_s
        self.reconnect_cap_s = settings.reconnect_cap_s
        self.replay_s = settings.replay_s
        self.reconnects = 0  # upstream reconnects, all streams (for tests and reports)
        self._client: AsyncDeepgramClient | None = None
        self._httpx: httpx.AsyncClient | None = None
        self._streams: set[DeepgramStream] = set()
        self._targets: dict[tuple[tuple[str, Any], ...], tuple[str, dict[str, str]]] = {}
        self.proxy: str | None = None  # resolved from the environment at start()
        self.control = CONTROL

    def __repr__(self) -> str:
        return f"DeepgramEngine(model={self.model_name!r}, url={self._url or 'deepgram cloud'!r})"

    @property
    def upstream_url(self) -> str:
        """The WebSocket base URL streams connect to (for logs; it holds no key)."""
        return str(self._environment.production)

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
                api_key=self.__key,
                environment=self._environment,
                httpx_client=self._httpx,
                transport_factory=WebSocketTransport,
            )
        except RuntimeError as exc:  # another transport factory is installed in this process
            raise EngineFailure(f"cannot use deepgram-sdk's transport hook: {exc}") from None
        _cache_headers(self._client)
        self.proxy = get_proxy(parse_uri(self.upstream_url))  # as websockets would at every connect
        self._targets.clear()
        _engines_started += 1
        self.started = True

    async def open(self, config: StreamConfig) -> DeepgramStream:
        if not self.started or self._client is None:
            raise EngineFailure("the deepgram engine is not started")
        stream = DeepgramStream(self, _options(config, self.model_name), config)
        await stream.connect()
        return stream

    async def transcribe_file(self, request: FileRequest) -> FileTranscript:
        """The uploaded bytes through Deepgram's pre-recorded API (see `files`)."""
        if not self.started or self._client is None:
            raise EngineFailure("the deepgram engine is not started")
        return await files.transcribe_file(
            self._client, request, model=self.model_name, timeout_s=self.settings.file_timeout_s,
            max_retries=self.settings.file_max_retries, scrub=self.scrub,
        )

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

    async def upstream_target(self, options: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The URL and headers of a Live connection with `options`, as deepgram-sdk builds them.

        The SDK builds them the first time these options are seen (query encoding, its
        headers; ~0.1 ms); later streams with the same options reuse them.

        Raises:
            EngineFailure: the SDK did not use voxrelay's transport (an SDK change?).
        """
        key = tuple(sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in options.items()))
        target = self._targets.get(key)
        if target is None:
            if self._client is None:
                raise EngineFailure("the deepgram engine is not started")
            made: list[WebSocketTransport] = []
            claimed = claim_transport.set(made.append)
            try:
                async with self._client.listen.v1.connect(**options):  # builds the transport; connects nothing
                    pass
            finally:
                claim_transport.reset(claimed)
            if not made:
                raise EngineFailure("deepgram-sdk did not use voxrelay's transport (an SDK change?)")
            target = (made[0].url, made[0].headers)
            if len(self._targets) >= _TARGETS_KEPT:
                del self._targets[next(iter(self._targets))]
            self._targets[key] = target
        return target

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
    if config.dictation:  # Deepgram converts the commands itself
        options["dictation"] = True
    if config.encoding in ("linear16", "mulaw", "alaw"):  # raw samples: Deepgram needs the rate
        options.update(encoding=config.encoding, sample_rate=config.sample_rate, channels=config.channels)
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
