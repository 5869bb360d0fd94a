"""Typed settings: environment variables with the prefix `VOXRELAY_`, overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXRELAY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    engine: str = "local"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Local engine.
    model: str | None = None  # engine default when None (local: tiny.en; deepgram: nova-3)
    device: str = "cpu"
    compute_type: str = "int8"
    cpu_threads: int = Field(0, ge=0, description="0 = CTranslate2's default (all cores)")
    interim_interval: float = Field(0.5, gt=0, le=10)
    final_beam_size: int = Field(1, ge=1, le=10)

    # Deepgram engine (the key itself is read from DEEPGRAM_API_KEY only).
    deepgram_url: str | None = None

    # Deepgram-compatible /v1/listen: comma-separated keys accepted as `Authorization: Token KEY`
    # (or `Sec-WebSocket-Protocol: token, KEY`); empty = no auth. Idle window before close 1011 NET-0001.
    listen_api_keys: str = ""
    listen_idle_timeout_s: float = Field(10.0, gt=0)

    # Limits.
    max_sessions: int = Field(16, ge=1)
    max_session_s: float = Field(3600, gt=0)
    max_text_frame: int = Field(16 * 1024, ge=256)
    max_audio_frame: int = Field(64 * 1024, ge=1024)

    # Web UI: the built renderer; None = the copy inside the package, if built.
    web_dir: Path | None = None
