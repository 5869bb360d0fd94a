"""Settings of engine `deepgram`: environment variables `VOXRELAY_DEEPGRAM_*`.

`VOXRELAY_MODEL` still works for the default model (`VOXRELAY_DEEPGRAM_MODEL` wins when both
are set). The API key is not a setting: the engine reads `DEEPGRAM_API_KEY` from the
environment itself, so it can never appear in a settings dump or a validation error.
Importing this module needs none of the `deepgram` extra.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from voxrelay.engines.settings import EngineSettings

__all__ = ["DeepgramSettings"]

_SCHEMES = ("ws", "wss", "http", "https")


class DeepgramSettings(EngineSettings):
    """Options of `DeepgramEngine`: the upstream, its timeouts and reconnects."""

    model_config = SettingsConfigDict(env_prefix="VOXRELAY_DEEPGRAM_")
    legacy_env: ClassVar[dict[str, str]] = {"model": "VOXRELAY_MODEL"}

    # Default model; a client's configure may name another.
    model: str = Field(default="nova-3", min_length=1)
    # Upstream base URL, e.g. ws://127.0.0.1:8765 (a /v1/listen suffix is fine); None or empty = Deepgram's cloud.
    url: str | None = None
    # Send KeepAlive after this long with nothing else to send.
    keepalive_s: float = Field(default=5.0, gt=0)
    # After CloseStream, how long to wait for Deepgram to close.
    close_timeout_s: float = Field(default=10.0, gt=0)
    # How long the upstream handshake may take.
    open_timeout_s: float = Field(default=10.0, gt=0)
    # How long one send may wait on a stalled upstream.
    send_timeout_s: float = Field(default=10.0, gt=0)
    # Reconnects in a row before the stream fails; 0 = none.
    max_reconnects: int = Field(default=5, ge=0)
    # First backoff before a reconnect (full jitter).
    reconnect_base_s: float = Field(default=0.5, gt=0)
    # Longest backoff before a reconnect.
    reconnect_cap_s: float = Field(default=10.0, gt=0)
    # Seconds of linear16 audio kept to re-send after a reconnect.
    replay_s: float = Field(default=30.0, ge=0)
    # Whole-file transcription (pre-recorded API): how long one request may take, upload to answer.
    file_timeout_s: float = Field(default=300.0, gt=0)
    # Retries of a file request that failed with 429/5xx or could not connect (the SDK's backoff).
    file_max_retries: int = Field(default=2, ge=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str | None) -> str | None:
        """Empty means the cloud; otherwise a ws(s):// or http(s):// URL with a host."""
        if url is None or not url.strip():
            return None
        url = url.strip()
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in _SCHEMES:
            raise ValueError(f"must start with ws://, wss://, http:// or https:// (got {url!r})")
        if not rest.split("/", 1)[0]:
            raise ValueError(f"has no host (got {url!r})")
        return url
