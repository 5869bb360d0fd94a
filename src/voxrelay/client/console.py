"""How `voxrelay transcribe` shows a session: interims redrawn in place on a terminal, or every message as JSON."""

from __future__ import annotations

import sys
from typing import TextIO

from voxrelay.protocol.messages import ErrorMessage, FinalTranscript, InterimTranscript, ServerMessage, encode

__all__ = ["Console"]


class Console:
    """`show` is `transcribe`'s `on_message`: a terminal sees the current interim on one line, redrawn."""

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, json_lines: bool = False) -> None:
        self.out, self.err = out, err
        self.json_lines = json_lines
        self.live = out.isatty() and not json_lines
        self._width = 0

    def show(self, message: ServerMessage) -> None:
        if self.json_lines:
            print(encode(message), file=self.out, flush=True)
            return
        if isinstance(message, ErrorMessage):
            print(f"voxrelay: {message.message} ({message.code})", file=self.err)
        if not self.live:
            return
        if isinstance(message, InterimTranscript):
            self._redraw(message.transcript[-100:])
        elif isinstance(message, FinalTranscript) and message.transcript:
            self._redraw(message.transcript)
            self.out.write("\n")
            self._width = 0
        self.out.flush()

    def _redraw(self, line: str) -> None:
        self.out.write("\r" + line.ljust(self._width))
        self._width = len(line)

    def finish(self, text: str) -> None:
        """After the session: a terminal already saw the finals; a pipe gets the whole text once."""
        if self.live:
            self.out.write("\r" + " " * self._width + "\r")
        elif not self.json_lines:
            print(text, file=self.out)
