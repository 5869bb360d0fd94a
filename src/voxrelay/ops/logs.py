"""Logging setup: one JSON object per line (or plain text), with the session id on every record.

`configure_logging(level, fmt)` installs one handler on the root logger (uvicorn's
loggers propagate to it when uvicorn is run with `log_config=None`). Connections set
`session_id` (a context variable) once; tasks they create inherit it, so every record
logged on their behalf, by any module, carries `"session_id"`. Records may add fields
with `extra={...}`; they become keys of the JSON object.

Privacy rule for the whole code base: no audio and no transcript text in records at
INFO or above. Transcripts may be logged at DEBUG only (`--log-level debug`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, Literal

__all__ = ["JsonFormatter", "LogFormat", "SessionIdFilter", "TextFormatter", "configure_logging", "session_id"]

LogFormat = Literal["auto", "json", "text"]

session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("voxrelay_session_id", default=None)
"""The id of the session the current task works for (None outside sessions)."""

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class SessionIdFilter(logging.Filter):
    """Copies the `session_id` context variable onto records that do not carry one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "session_id", None) is None:
            sid = session_id.get()
            if sid is not None:
                record.session_id = sid
        return True


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "session_id"?, ...extra, "exc"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time level logger [session]: message` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(sid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        sid = getattr(record, "session_id", None)
        record.sid = f" [{sid}]" if sid else ""
        return super().format(record)


def configure_logging(level: str = "info", fmt: LogFormat = "auto", stream: Any = None) -> logging.Handler:
    """Send every record at `level` or above to `stream` (stderr), as JSON or text.

    Args:
        level: debug, info, warning or error.
        fmt: `json`, `text`, or `auto`: text when `stream` is a terminal, JSON otherwise.
        stream: where to write; stderr when None.

    Returns:
        The installed handler (it replaces handlers a previous call installed).
    """
    stream = stream if stream is not None else sys.stderr
    if fmt == "auto":
        fmt = "text" if getattr(stream, "isatty", lambda: False)() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SessionIdFilter())
    handler.set_name("voxrelay")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "voxrelay"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers: let them reach the root handler instead of their own.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
