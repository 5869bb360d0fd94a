"""Structured logs: JSON lines with session ids, and no transcript text at INFO."""

from __future__ import annotations

import io
import json
import logging
import re
import threading
from collections.abc import Iterator

import pytest

from tests.support import ServerThread, clip
from voxrelay.client import stream_audio
from voxrelay.ops import logs

LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


@pytest.fixture
def restore_root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorn = {name: (logging.getLogger(name).propagate, list(logging.getLogger(name).handlers))
               for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (propagate, old) in uvicorn.items():
        logging.getLogger(name).propagate = propagate
        logging.getLogger(name).handlers[:] = old


def test_json_lines_carry_the_session_id_and_extras(restore_root_logging: None) -> None:
    out = io.StringIO()
    logs.configure_logging("info", "json", stream=out)
    log = logging.getLogger("voxrelay.test")
    token = logs.session_id.set("abc123")
    try:
        log.info("session %s opened", "abc123", extra={"engine": "local"})
    finally:
        logs.session_id.reset(token)
    log.debug("not at info")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["msg"] == "session abc123 opened" and first["level"] == "info" and first["logger"] == "voxrelay.test"
    assert first["session_id"] == "abc123" and first["engine"] == "local" and first["ts"].endswith("+00:00")
    assert "session_id" not in second and "ValueError: boom" in second["exc"]


def test_auto_format_is_text_on_a_terminal_and_json_otherwise(restore_root_logging: None) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    logs.configure_logging("info", "auto", stream=tty)
    token = logs.session_id.set("s1")
    try:
        logging.getLogger("voxrelay").info("hello")
    finally:
        logs.session_id.reset(token)
    assert re.search(r" INFO voxrelay \[s1\]: hello$", tty.getvalue().strip())

    pipe = io.StringIO()
    logs.configure_logging("info", "auto", stream=pipe)
    logging.getLogger("voxrelay").info("hello")
    assert json.loads(pipe.getvalue())["msg"] == "hello"
    assert sum(h.get_name() == "voxrelay" for h in logging.getLogger().handlers) == 1  # replaced, not added


async def test_no_transcript_text_in_info_logs(local_engine_server: ServerThread, restore_root_logging: None) -> None:
    out = io.StringIO()
    logs.configure_logging("info", "json", stream=out)
    closed = threading.Event()

    class OnClose(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "session" in record.getMessage() and "closed" in record.getMessage():
                closed.set()

    logging.getLogger().addHandler(OnClose())
    c = clip("s07_names_message.wav")
    result = await stream_audio(local_engine_server.url(), c.linear16(), configure={"audio_format": LINEAR16}, speed=0)
    assert result.of_type("stopped"), result.messages
    spoken = {w for w in re.findall(r"[a-z']+", (result.transcript + " " + c.reference).lower()) if len(w) >= 5}
    assert len(spoken) >= 3, result.transcript

    session = result.of_type("ready")[0]["session_id"]
    assert closed.wait(30), out.getvalue()  # the server logs the close after the client saw it
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(r.get("session_id") == session and "closed" in r["msg"] for r in records), records
    text = out.getvalue().lower()
    leaked = sorted(w for w in spoken if re.search(rf"\b{re.escape(w)}\b", text))
    assert not leaked, (leaked, records)
