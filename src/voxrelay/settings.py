"""Typed gateway settings: environment variables with the prefix `VOXRELAY_`, overridden by CLI flags.

Engine options are not here: each engine has its own settings model (`VOXRELAY_LOCAL_*`,
`VOXRELAY_DEEPGRAM_*`; see `voxrelay.engines`). An unknown keyword is refused, never ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXRELAY_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    engine: str = "local"  # a name in voxrelay.engines.ENGINES; its options are that engine's settings
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, JSON otherwise

    # Deepgram-compatible /v1/listen: comma-separated keys accepted as `Authorization: Token KEY`
    # (or `Sec-WebSocket-Protocol: token, KEY`); empty = no auth. Idle window before close 1011 NET-0001.
    listen_api_keys: str = ""
    listen_idle_timeout_s: float = Field(default=10.0, gt=0)

    # Gateway processes sharing the port (docs/deploy.md, "Worker processes"); caps and metrics are per process.
    workers: int = Field(default=1, ge=1, le=64)

    # Limits.
    max_sessions: int = Field(default=16, ge=1)
    max_session_s: float = Field(default=3600, gt=0)
    max_text_frame: int = Field(default=16 * 1024, ge=256)
    max_audio_frame: int = Field(default=64 * 1024, ge=1024)
    # File uploads (POST /v1/audio/transcriptions, POST /v1/listen): upload size (OpenAI's 25 MB), audio
    # length, uploads decoding at once.
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_file_duration_s: float = Field(default=3600, gt=0)
    max_file_jobs: int = Field(default=2, ge=1)

    # Who may connect (docs/security.md). Auth is off only on loopback with no keys.
    api_keys: str = ""  # comma-separated; `Authorization: Bearer KEY`, also accepted by /v1/listen
    allowed_origins: str = "app://voxrelay"  # comma-separated exact origins, besides the same origin
    token_ttl_s: float = Field(default=60.0, gt=0, le=3600)  # a minted token must be used within this
    # The HMAC key of minted tokens: set the same value on several instances so a token minted by one is
    # accepted by another. Empty = random per start (`--workers N` hands one to all its workers). Never logged.
    token_secret: str = Field(default="", repr=False)
    admin_key: str = ""  # POST /admin/drain with `Authorization: Bearer KEY`; empty = loopback peers only

    # Abuse limits (the byte-rate and handshake limits apply when auth is on).
    max_sessions_per_key: int = Field(default=8, ge=1)
    rate_limit_factor: float = Field(default=2.0, ge=0)  # audio at most this many x real time; 0 = off
    rate_limit_burst_s: float = Field(default=5.0, ge=0)
    idle_timeout_s: float = Field(default=60.0, ge=0)  # no frame for this long -> close 1008; 0 = never
    handshakes_per_minute: float = Field(default=120.0, ge=0)  # per client address; 0 = unlimited
    handshake_burst: int = Field(default=30, ge=1)
    retry_after_s: int = Field(default=5, ge=1)

    # Graceful drain: how long live sessions get to deliver their finals.
    drain_timeout_s: float = Field(default=30.0, gt=0)

    # Usage metering and quotas (docs/usage.md). The database: a SQLAlchemy URL (sqlite+aiosqlite://...,
    # postgresql+asyncpg://...); empty = a SQLite file `usage.db` in `data_dir` (empty = the platform's
    # user data folder). Audio seconds per key per calendar month (UTC), 0 = unlimited. Live sessions'
    # figures are written every `usage_flush_s`; while the database is away at most `usage_buffer`
    # session records wait in memory.
    data_dir: Path | None = None
    database_url: str = ""
    quota_audio_s: float = Field(default=0.0, ge=0)
    usage_flush_s: float = Field(default=2.0, gt=0, le=5)
    usage_buffer: int = Field(default=10000, ge=10)

    # Web UI: the built renderer; None = the copy inside the package, if built.
    web_dir: Path | None = None

    @field_validator("token_secret")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be at least 32 characters (e.g. `python -c 'import secrets; "
                             "print(secrets.token_urlsafe(32))'`)")
        return value
