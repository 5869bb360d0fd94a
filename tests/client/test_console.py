"""client/console.py: how `voxrelay transcribe` prints a session on a terminal, a pipe, or as JSON lines."""

from __future__ import annotations

import io
import json

from voxrelay.client.console import Console
from voxrelay.protocol.messages import ErrorMessage, FinalTranscript, InterimTranscript, Ready, Stopped


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


SESSION = [
    Ready("s1", "local"),
    InterimTranscript("hello wor"),
    FinalTranscript("Hello world.", 0.1, 1.0, True),
    ErrorMessage("bad_request", "audio after stop was ignored"),
    Stopped(),
]


def test_a_terminal_sees_interims_redrawn_and_finals_on_their_own_lines() -> None:
    out, err = Terminal(), io.StringIO()
    console = Console(out, err)
    for message in SESSION:
        console.show(message)
    console.finish("Hello world.")
    assert out.getvalue().split("\n")[0] == "\rhello wor\rHello world."
    assert err.getvalue() == "voxrelay: audio after stop was ignored (bad_request)\n"


def test_a_pipe_gets_the_text_once() -> None:
    out = io.StringIO()
    console = Console(out, io.StringIO())
    for message in SESSION:
        console.show(message)
    console.finish("Hello world.")
    assert out.getvalue() == "Hello world.\n"


def test_json_lines_are_the_wire_messages() -> None:
    out = io.StringIO()
    console = Console(out, io.StringIO(), json_lines=True)
    for message in SESSION:
        console.show(message)
    console.finish("Hello world.")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["ready", "interim_transcript", "final_transcript", "error", "stopped"]
    assert lines[2] == {"type": "final_transcript", "transcript": "Hello world.", "start": 0.1, "end": 1.0,
                        "speech_final": True}
