"""`voxrelay` as a person runs it: real processes, real sockets."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes import EchoEngine
from tests.support import ServerThread, clip, wer
from voxrelay.settings import Settings

VOXRELAY = [sys.executable, "-m", "voxrelay.cli"]


def test_transcribe_prints_the_transcript(local_engine_server: ServerThread) -> None:
    c = clip("s07_names_message.wav")
    done = subprocess.run(
        [*VOXRELAY, "transcribe", str(c.path), "--url", local_engine_server.url(), "--speed", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert wer([c.reference], [done.stdout.strip()]) <= 0.3, done.stdout


def test_transcribe_json_lines(local_engine_server: ServerThread) -> None:
    c = clip("s03_question_weather.wav")
    done = subprocess.run(
        [*VOXRELAY, "transcribe", str(c.path), "--url", local_engine_server.url(), "--speed", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "ready" and kinds[-1] == "stopped" and "final_transcript" in kinds
    text = " ".join(m["transcript"] for m in messages if m["type"] == "final_transcript")
    assert wer([c.reference], [text]) <= 0.2


def test_transcribe_reports_an_unreachable_gateway() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    c = clip("s01_command_lights.wav")
    done = subprocess.run(
        [*VOXRELAY, "transcribe", str(c.path), "--url", f"ws://127.0.0.1:{port}/stt-stream"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("voxrelay: cannot reach") and "Traceback" not in done.stderr


def test_serve_starts_and_reports_health() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [*VOXRELAY, "serve", "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "VOXRELAY_MAX_SESSIONS": "3"},
    )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                status = response.status_code
                if status == 200:
                    assert response.json() == {"status": "ok", "engine": "local"}
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling a starting process over HTTP
        assert status == 200, proc.stdout.read() if proc.poll() is not None else status
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_serve_rejects_an_unknown_engine() -> None:
    done = subprocess.run([*VOXRELAY, "serve", "--engine", "nope"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown engine 'nope'" in done.stderr


def _serve_refused(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """`voxrelay serve` with only `env` as voxrelay settings; `-X importtime` lists every module it imported."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("VOXRELAY_")}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "voxrelay.cli", "serve", "--port", "0", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            [],
            {"VOXRELAY_LOCAL_BEAM": "3"},
            "unknown setting VOXRELAY_LOCAL_BEAM: did you mean VOXRELAY_LOCAL_FINAL_BEAM_SIZE?",
        ),
        (["-o", "beam=3"], {}, "unknown option 'beam' for engine 'local': did you mean 'final_beam_size'?"),
        ([], {"VOXRELAY_FINAL_BEAM_SIZE": "0"}, "invalid setting VOXRELAY_FINAL_BEAM_SIZE='0': "),
        ([], {"VOXRELAY_MAX_SESSIONS": "many"}, "invalid setting VOXRELAY_MAX_SESSIONS='many': "),
        (["--engine", "deepgram"], {"VOXRELAY_DEEPGRAM_URL": "dg.com"}, "invalid setting VOXRELAY_DEEPGRAM_URL="),
    ],
)
def test_serve_refuses_bad_settings_before_loading_anything(args: list[str], env: dict[str, str], message: str) -> None:
    done = _serve_refused(args, **env)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("voxrelay: ")]
    assert len(errors) == 1 and errors[0].startswith(f"voxrelay: {message}"), errors
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "voxrelay.engines.settings" in imported, "importtime output not seen"
    assert not imported & {"faster_whisper", "onnxruntime", "deepgram", "uvicorn", "voxrelay.gateway.app"}


def test_serve_lists_every_unknown_variable() -> None:
    done = _serve_refused([], VOXRELAY_LOCAL_BEAM="3", VOXRELAY_MAX_SESION_S="60")
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.startswith("voxrelay: ")] == [
        "voxrelay: unknown setting VOXRELAY_LOCAL_BEAM: did you mean VOXRELAY_LOCAL_FINAL_BEAM_SIZE?",
        "voxrelay: unknown setting VOXRELAY_MAX_SESION_S: did you mean VOXRELAY_MAX_SESSION_S?",
    ]


@pytest.mark.parametrize("target", ["README.md", "no-such-recording.wav", "src"])
def test_transcribe_of_what_is_not_audio_is_one_line_and_exit_1(local_engine_server: ServerThread, target: str) -> None:
    done = subprocess.run(
        [*VOXRELAY, "transcribe", target, "--url", local_engine_server.url()],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 1
    assert done.stderr.startswith(f"voxrelay: {target}: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and not done.stdout


def test_transcribe_shows_a_refusal_as_one_line(local_engine_server: ServerThread) -> None:
    keyed = ServerThread(Settings(port=0, api_keys="vx-cli-right-key", handshakes_per_minute=0), EchoEngine()).start()
    try:
        done = subprocess.run(
            [*VOXRELAY, "transcribe", str(clip("s01_command_lights.wav").path), "--url", keyed.url()],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "VOXRELAY_API_KEY": "vx-cli-wrong-key"},
        )
    finally:
        keyed.stop()
    assert done.returncode == 1
    assert done.stderr.startswith("voxrelay: the gateway refused the connection (HTTP 401)"), done.stderr
    assert done.stderr.count("\n") == 1 and "vx-cli" not in done.stderr
