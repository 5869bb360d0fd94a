"""docs/clients.md's Python examples, run as written (only the URL changed) against a real gateway."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ServerThread, clip, wer

DOC = Path(__file__).parents[2] / "docs" / "clients.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
DOC_URL = "ws://127.0.0.1:8765/stt-stream"


def run_example(code: str, server: ServerThread, folder: Path) -> str:
    shutil.copy(clip("s10_dictation_email.wav").path, folder / "recording.wav")
    (folder / "notes.txt").write_text("a text file, not a recording\n")
    assert DOC_URL in code
    done = subprocess.run(
        [sys.executable, "-c", code.replace(DOC_URL, server.url())],
        capture_output=True, text=True, timeout=120, cwd=folder,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_doc_has_the_three_examples() -> None:
    assert len(EXAMPLES) == 3


@pytest.mark.parametrize("index", [0, 1])
def test_the_transcribe_and_connect_examples_print_the_transcript(
    local_engine_server: ServerThread, tmp_path: Path, index: int
) -> None:
    out = run_example(EXAMPLES[index], local_engine_server, tmp_path).splitlines()
    reference = clip("s10_dictation_email.wav").reference
    assert wer([reference], [out[0] if index == 0 else out[-1]]) <= 0.2, out
    if index == 0:  # then one timed line per segment
        assert re.fullmatch(r"\s*\d+\.\d\d-\s*\d+\.\d\d  .+", out[1]), out
    else:  # interims were printed while it ran
        assert any(line.startswith("... ") for line in out[:-1]), out


def test_the_errors_example_prints_the_code_and_message(local_engine_server: ServerThread, tmp_path: Path) -> None:
    out = run_example(EXAMPLES[2], local_engine_server, tmp_path)
    assert out.startswith("unsupported_audio: notes.txt: not audio voxrelay can read"), out
