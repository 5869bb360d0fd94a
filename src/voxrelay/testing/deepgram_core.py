"""The server side of Deepgram's Live API (`/v1/listen`) as a fake, sans-I/O: no asyncio, no sockets.

Both fake upstreams are thin I/O shells over it: `testing.fake_deepgram` (asyncio and
websockets' server, for tests: scripts, faults, records) and `bench.upstream` (websockets'
sans-I/O `ServerProtocol` on an asyncio `Protocol`, fast enough to serve a thousand
streams to a benchmark). It answers canned text timed by how much audio arrived, as a
`Script` says, faults included. Call order, per connection:

    api = FakeListenApi(api_key="k", scripts={"drop": Script(fault="drop", fault_after_bytes=3200)})
    refusal = api.refusal(path, headers)          # a Refusal: answer the handshake with it, and stop
    stream = api.open(path, headers)               # after the upgrade: this connection's ListenStream
    stream.receive_audio(data) / stream.receive_text(text) / stream.idle()   # per frame / idle timeout
    for item in stream.outgoing(): ...             # after each call: what to do, in order
    stream.closed()                                # when the connection is gone (whatever ended it)

`outgoing()` yields server messages (`encode` them into text frames), raw text (a
malformed frame), and `Close` (after the replies before it), `Hangup` (close now: the
server gave up), `Drop` (abort TCP, no close frame) and `Stall` (stop reading, drop the
connection `seconds` later). `Script.reply_delay_s` and `ListenStream.idle_timeout_s` are
for the shell's clock: the core keeps no time.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

from voxrelay.engines.base import Word
from voxrelay.protocol.deepgram_live import (
    NET_0001_REASON,
    MetadataMessage,
    ModelInfo,
    ResultsMessage,
    ServerMessage,
    SpeechStartedMessage,
    UtteranceEndMessage,
)
from voxrelay.testing.deepgram_script import CONTAINER_BYTES_PER_S, Connection, Script

__all__ = [
    "Close",
    "Connection",
    "Drop",
    "FakeListenApi",
    "Hangup",
    "ListenStream",
    "Outgoing",
    "Refusal",
    "Script",
    "Stall",
]

MODEL = ModelInfo("fake-deepgram", "0", "fake")


# What a stream asks its shell to do, besides sending server messages and raw text.


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer the handshake with this HTTP status and body instead of upgrading."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with `code` once the replies queued before it are sent."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Hangup:
    """Close the WebSocket now (replies still queued are lost), and keep reading until the client answers."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Drop:
    """Abort the TCP connection: no close frame."""


@dataclass(frozen=True, slots=True)
class Stall:
    """Read nothing more; abort the TCP connection after `seconds` (a hung upstream)."""

    seconds: float


Outgoing = ServerMessage | str | Close | Hangup | Drop | Stall
_NOTHING: list[Outgoing] = []  # returned by `outgoing()` when there is nothing to do: never mutated


class FakeListenApi:
    """The fake's server-wide part: auth, the script per `model`, and a record per connection.

    Args:
        api_key: require `Authorization: Token <api_key>`; None accepts any request.
        scripts: a script per `model` query parameter; others get `default`.
        keep_records: keep every connection's `Connection` in `connections` (tests read them;
            a long benchmark run does not want them).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        scripts: dict[str, Script] | None = None,
        default: Script | None = None,
        keep_records: bool = True,
    ) -> None:
        self._api_key = api_key.encode() if api_key is not None else None
        self.scripts = dict(scripts or {})
        self.default = default or Script()
        self.keep_records = keep_records
        self.connections: list[Connection] = []
        self.faulted_models: set[str] = set()  # for Script.fault_once

    @property
    def open_connections(self) -> int:
        return sum(1 for c in self.connections if not c.closed)

    def script_for(self, params: dict[str, list[str]]) -> Script:
        model = (params.get("model") or [""])[0]
        return self.scripts.get(model, self.default)

    def authorized(self, headers: Mapping[str, str]) -> bool:
        if self._api_key is None:
            return True
        scheme, _, credential = (headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "token" and hmac.compare_digest(credential.encode(), self._api_key)

    def refusal(self, path: str, headers: Mapping[str, str]) -> Refusal | None:
        """How to refuse this handshake, or None to upgrade (then call `open`)."""
        url = urlsplit(path)
        if url.path.rstrip("/") != "/v1/listen":
            return Refusal(404, "not found\n")
        if not self.authorized(headers):
            return Refusal(401, '{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}')
        script = self.script_for(parse_qs(url.query))
        if script.reject_status is not None:
            return Refusal(script.reject_status, '{"err_code":"SCRIPTED","err_msg":"refused"}')
        return None

    def open(self, path: str, headers: Mapping[str, str]) -> ListenStream:
        """The stream of an upgraded connection (its record is in `connections`)."""
        params = parse_qs(urlsplit(path).query)
        record = Connection(params, self.authorized(headers), self.script_for(params))
        record.extensions = headers.get("Sec-WebSocket-Extensions")
        if self.keep_records:
            self.connections.append(record)
        return ListenStream(record, self.faulted_models)


class ListenStream:
    """One connection: counts audio, answers per its script, runs the script's fault.

    Args:
        record: what the stream saw is counted here (its `script` says how to answer).
        faulted_models: shared by a server's streams, for `Script.fault_once`.
    """

    def __init__(self, record: Connection, faulted_models: set[str] | None = None) -> None:
        self.record = record
        self.script = script = record.script
        self._faulted_models = faulted_models if faulted_models is not None else set()
        self._out: list[Outgoing] = []
        self.request_id = str(uuid.uuid4())
        encoding = record.param("encoding")
        if encoding in ("linear16", "mulaw", "alaw"):  # raw samples: 2 bytes each, or 1 for G.711
            rate = int(record.param("sample_rate") or 16000)
            self.bytes_per_s = rate * int(record.param("channels") or 1) * (2 if encoding == "linear16" else 1)
        else:
            self.bytes_per_s = CONTAINER_BYTES_PER_S
        self._interim_every = script.interim_every_s if record.param("interim_results") == "true" else 0.0
        self._vad_events = script.speech_started and record.param("vad_events") == "true"
        self._utterance_end = record.param("utterance_end_ms") is not None
        self._words = [(w.strip(".,?!").lower(), w) for w in script.transcript.split()]
        self.segment = bytearray()  # this segment's audio (Script.words_from_audio)
        self.segment_start = 0.0  # audio seconds where the current (not yet final) segment began
        self._next_interim = self._interim_every
        self._interims = 0
        self._speaking = False
        self.faulted = False
        self.ended = False  # closed, hung up, dropped or stalled: nothing more is answered

    @property
    def audio_s(self) -> float:
        return self.record.audio_bytes / self.bytes_per_s

    @property
    def idle_timeout_s(self) -> float | None:
        """Call `idle()` after this long with no frame from the client (None: never)."""
        return None if self.ended else self.script.idle_timeout_s

    def outgoing(self) -> list[Outgoing]:
        """What to do since the last call, in order (call after every `receive_*` and `idle`)."""
        out = self._out
        if not out:
            return _NOTHING
        self._out = []
        return out

    # Public methods for what the client did.

    def receive_audio(self, data: bytes | bytearray | memoryview) -> None:
        """A binary frame (audio)."""
        record, script = self.record, self.script
        record.audio_bytes += len(data)
        if self.ended:
            return
        faulty = script.fault is not None and not self.faulted and record.audio_bytes >= script.fault_after_bytes
        if faulty and self._fault():
            return  # the connection is over
        if script.words_from_audio:
            self.segment += data
        if not self._speaking:
            self._speaking = True
            if self._vad_events:
                self._out.append(SpeechStartedMessage(self.segment_start))
        heard = record.audio_bytes / self.bytes_per_s - self.segment_start
        if self._interim_every and heard >= self._next_interim:
            self._next_interim += self._interim_every
            self._interims += 1
            self._out.append(self._results(final=False))
        if script.final_every_s is not None and heard >= script.final_every_s:
            self._final(speech_final=True, from_finalize=False)
        if script.stall_after_bytes is not None and record.audio_bytes >= script.stall_after_bytes:
            self.ended = True
            self._out.append(Stall(script.stall_s))

    def receive_text(self, text: str) -> None:
        """A text frame (KeepAlive, Finalize, CloseStream; anything else is recorded and ignored)."""
        record = self.record
        kind = _message_type(text)
        record.messages.append(kind)
        if self.faulted and self.script.fault == "close":
            return  # closing after a fault: nothing more is answered
        if kind == "KeepAlive":
            record.keepalives += 1
        elif kind == "Finalize":
            record.finalizes += 1
            if not self.ended and not self.script.silent_finalize:
                self._final(speech_final=False, from_finalize=True)
        elif kind == "CloseStream":
            record.close_streams += 1
            if self.script.ignore_close_stream or self.ended:
                return
            self._final(speech_final=True, from_finalize=False)
            channels = int(record.param("channels") or 1)
            self._out.append(MetadataMessage(self.request_id, MODEL, "0" * 64, _now(), self.audio_s, channels))
            self._out.append(Close(1000))
            self.ended = True

    def idle(self) -> None:
        """Nothing arrived for `idle_timeout_s`: Deepgram closes such a stream with NET-0001."""
        if not self.ended:
            self.ended = True
            self._out.append(Hangup(1011, NET_0001_REASON))

    def closed(self) -> None:
        """The connection is gone (call once, whatever ended it)."""
        self.ended = True
        self.record.closed = True

    # The answers.

    def _fault(self) -> bool:
        """Run the script's fault (unless `fault_once` spent it); True if that ended the connection."""
        script = self.script
        model = self.record.param("model") or ""
        if script.fault_once and model in self._faulted_models:
            return False
        self.faulted = True
        self._faulted_models.add(model)
        if script.fault == "drop":
            self._out.append(Drop())
        elif script.fault == "close":
            self._out.append(Hangup(script.close_code, script.close_reason))
        else:
            self._out.append("{this is not json")
            return False
        self.ended = True
        return True

    def _final(self, *, speech_final: bool, from_finalize: bool) -> None:
        end = self.audio_s
        if end <= self.segment_start:
            return  # nothing new to finalize
        self._out.append(self._results(final=True, speech_final=speech_final, from_finalize=from_finalize))
        if self._utterance_end:
            self._out.append(UtteranceEndMessage(end))
        self.segment_start = end
        if self.segment:
            self.segment = bytearray()
        self._next_interim = self._interim_every
        self._interims = 0
        self._speaking = False

    def _results(self, *, final: bool, speech_final: bool = False, from_finalize: bool = False) -> ResultsMessage:
        words = self._words
        if self.script.words_from_audio:
            block = max(2, self.bytes_per_s // 10)
            seg = bytes(self.segment)
            sums = [f"w{zlib.crc32(seg[i : i + block]):08x}" for i in range(0, len(seg), block)] or ["-"]
            words = [(w, w) for w in sums]
        count = len(words) if final else min(len(words), self._interims)
        start, end = self.segment_start, max(self.audio_s, self.segment_start)
        step = (end - start) / max(len(words), 1)
        said = words[:count]
        timed = tuple(Word(w, start + i * step, start + (i + 1) * step, 0.99, p) for i, (w, p) in enumerate(said))
        transcript = " ".join(p for _, p in said)
        if self.script.stamp_transcripts:
            transcript = f"{transcript} t{time.monotonic_ns()}"  # last: the relay's clock starts here
        confidence = 0.99 if count else 0.0
        return ResultsMessage(
            self.request_id,
            MODEL,
            start,
            end - start,
            final,
            speech_final,
            from_finalize,
            transcript,
            confidence,
            timed,
        )


def _message_type(text: str) -> str:
    try:
        data: Any = json.loads(text)
    except ValueError:
        return "invalid"
    return str(data.get("type")) if isinstance(data, dict) else "invalid"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
