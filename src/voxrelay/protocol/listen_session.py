"""One `/v1/listen` connection after the upgrade, as a sans-I/O state machine.

`voxrelay.gateway.listen_v1` feeds a `ListenSession` with `receive_audio`, `receive_text`,
`engine_event`, `engine_flushed`, `fail`, `idle_timeout` and `client_gone`, and after
every call must run the actions from `actions()` in order: send a text frame, open
the engine stream (once the audio format is known), feed/finalize/end it, close the
socket. The session never awaits anything and imports no asyncio.

    AWAITING_AUDIO --first audio, format known--> STREAMING --CloseStream--> CLOSING --engine flushed--> CLOSED
    AWAITING_AUDIO --CloseStream--> CLOSED (Metadata, 1000)
    any state --fatal error / idle timeout / client gone--> CLOSED

When the request names no encoding, `AudioSniffer` looks at the first bytes: webm and
ogg go to the container decoder, WAV is unwrapped to linear16.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

from pydantic import ValidationError

from voxrelay.protocol import events as ev
from voxrelay.protocol.actions import (
    Action,
    CloseEngine,
    CloseSocket,
    FeedAudio,
    FinalizeEngine,
    OpenEngine,
    SendKind,
    SendText,
)
from voxrelay.protocol.deepgram_live import (
    DATA_0000,
    NET_0001_REASON,
    CloseStream,
    Configure,
    ConfigureFailureMessage,
    ControlError,
    ErrorMessage,
    Finalize,
    ListenParams,
    MetadataMessage,
    ModelInfo,
    ResultsMessage,
    ServerMessage,
    SpeechStartedMessage,
    UtteranceEndMessage,
    encode,
    parse_control,
)
from voxrelay.protocol.messages import AudioFormat

__all__ = [
    "AudioFormatError",
    "AudioSniffer",
    "CloseSocket",
    "EndStream",
    "FeedAudio",
    "FinalizeStream",
    "ListenAction",
    "ListenProtocolError",
    "ListenSession",
    "ListenState",
    "ListenTrigger",
    "OpenStream",
    "SendText",
    "SniffedFormat",
    "TRANSITIONS",
    "next_state",
]

_CONTAINER_ENCODINGS = {"opus", "ogg-opus"}

# Finding out what the binary frames contain, when the request did not say.


class AudioFormatError(Exception):
    """The first bytes are not audio voxrelay can decode with the request's parameters."""


@dataclass(frozen=True, slots=True)
class SniffedFormat:
    audio_format: AudioFormat
    payload: bytes  # the bytes to feed: everything so far (containers) or the PCM after a WAV header


_WAV_HEADER_LIMIT = 64 * 1024


class AudioSniffer:
    """Buffers the first bytes until the format is known.

    Call `feed(data)` with each binary frame until it returns a `SniffedFormat`
    (None means "need more bytes"). linear16 is known without looking. WAV is
    unwrapped to linear16 (the header gives rate and channels), so the
    decoders only ever see linear16, webm or ogg.

    Raises:
        AudioFormatError: from `feed`, when the bytes are nothing voxrelay can decode.
    """

    def __init__(self, params: ListenParams) -> None:
        self._params = params
        self._buffer = b""

    def feed(self, data: bytes) -> SniffedFormat | None:
        params = self._params
        if params.encoding == "linear16":
            assert params.sample_rate is not None
            return SniffedFormat(
                AudioFormat(encoding="linear16", sample_rate=params.sample_rate, channels=params.channels), data
            )
        self._buffer += data
        head = self._buffer
        if len(head) < 4:
            return None
        if head.startswith(b"OggS"):
            return SniffedFormat(AudioFormat(encoding="ogg"), head)
        if head.startswith(b"\x1a\x45\xdf\xa3"):
            return SniffedFormat(AudioFormat(encoding="webm"), head)
        if params.encoding is None and head.startswith(b"RIFF"):
            return self._wav(head)
        if params.encoding in _CONTAINER_ENCODINGS:
            raise AudioFormatError(
                f"encoding={params.encoding} expects Ogg (or WebM) Opus; the first bytes are neither"
            )
        raise AudioFormatError(
            "could not detect a container (webm, ogg or wav) in the first bytes; "
            "for raw PCM pass encoding=linear16 and sample_rate"
        )

    def _wav(self, head: bytes) -> SniffedFormat | None:
        if len(head) < 12:
            return None
        if head[8:12] != b"WAVE":
            raise AudioFormatError("a RIFF file that is not WAVE")
        offset = 12
        fmt: tuple[int, int, int, int] | None = None
        while True:
            if len(head) > _WAV_HEADER_LIMIT:
                raise AudioFormatError("no WAV data chunk in the first 64 KiB")
            if len(head) < offset + 8:
                return None
            chunk_id, size = head[offset : offset + 4], struct.unpack("<I", head[offset + 4 : offset + 8])[0]
            body = offset + 8
            if chunk_id == b"data":
                break
            if len(head) < body + size:
                return None
            if chunk_id == b"fmt ":
                if size < 16:
                    raise AudioFormatError("a WAV fmt chunk shorter than 16 bytes")
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", head[body : body + 16])
                if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first 2 bytes
                    tag = struct.unpack("<H", head[body + 24 : body + 26])[0]
                fmt = (tag, channels, rate, bits)
            offset = body + size + (size & 1)
        if fmt is None:
            raise AudioFormatError("a WAV file without a fmt chunk before its data")
        tag, channels, rate, bits = fmt
        if tag != 1 or bits != 16:
            raise AudioFormatError(f"WAV audio must be 16-bit PCM (got format {tag}, {bits} bits)")
        try:
            audio_format = AudioFormat(encoding="linear16", sample_rate=rate, channels=channels)
        except ValidationError:
            raise AudioFormatError(
                f"WAV audio at {rate} Hz with {channels} channels is outside 8-48 kHz, 1-2 channels"
            ) from None
        return SniffedFormat(audio_format, head[body:])


# Actions the I/O glue must carry out, in order: the shared vocabulary (actions.py), under the
# names this module has always used.

OpenStream = OpenEngine
FinalizeStream = FinalizeEngine
EndStream = CloseEngine

ListenAction = Action


# The session: one transition table, then the class.


class ListenState(enum.Enum):
    AWAITING_AUDIO = "awaiting_audio"  # upgraded; the audio format is not known yet
    STREAMING = "streaming"  # engine stream open
    CLOSING = "closing"  # CloseStream received; the engine is flushing
    CLOSED = "closed"


class ListenTrigger(enum.Enum):
    FORMAT_KNOWN = "format_known"
    CLOSE_STREAM = "close_stream"
    ENGINE_FLUSHED = "engine_flushed"
    FATAL = "fatal"
    DISCONNECT = "disconnect"


_S, _T = ListenState, ListenTrigger
TRANSITIONS: dict[ListenState, dict[ListenTrigger, ListenState]] = {
    _S.AWAITING_AUDIO: {
        _T.FORMAT_KNOWN: _S.STREAMING,
        _T.CLOSE_STREAM: _S.CLOSED,
        _T.FATAL: _S.CLOSED,
        _T.DISCONNECT: _S.CLOSED,
    },
    _S.STREAMING: {
        _T.CLOSE_STREAM: _S.CLOSING,
        _T.ENGINE_FLUSHED: _S.CLOSED,  # the engine ended on its own
        _T.FATAL: _S.CLOSED,
        _T.DISCONNECT: _S.CLOSED,
    },
    _S.CLOSING: {_T.ENGINE_FLUSHED: _S.CLOSED, _T.FATAL: _S.CLOSED, _T.DISCONNECT: _S.CLOSED},
    _S.CLOSED: {_T.ENGINE_FLUSHED: _S.CLOSED, _T.FATAL: _S.CLOSED, _T.DISCONNECT: _S.CLOSED},
}


class ListenProtocolError(RuntimeError):
    """The caller asked for a move the table does not allow."""


def next_state(state: ListenState, trigger: ListenTrigger) -> ListenState:
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise ListenProtocolError(f"can't handle {trigger.value!r} when the stream is {state.value!r}") from None


_ERROR_CLOSE = {"unsupported_audio": 1008, "bad_request": 1008, "limit_exceeded": 1008}


@dataclass
class _Timeline:
    """Deepgram's Results tile the audio: each final starts where the previous one ended."""

    cursor: float = 0.0
    last_end: float = 0.0

    def span(self, start: float, end: float, *, final: bool) -> tuple[float, float]:
        begin = min(self.cursor, start)
        end = max(end, begin)
        self.last_end = max(self.last_end, end)
        if final:
            self.cursor = end
        return begin, end - begin


class ListenSession:
    """One `/v1/listen` connection after the upgrade.

    Args:
        request_id: sent in every Results and the Metadata (and the `dg-request-id` header).
        params: the validated request.
        model: the engine and model, for `metadata.model_info`.
        created: ISO 8601 time of the request, for Metadata.
    """

    def __init__(self, request_id: str, params: ListenParams, model: ModelInfo, created: str) -> None:
        self.request_id = request_id
        self.params = params
        self.model = model
        self.created = created
        self.state = ListenState.AWAITING_AUDIO
        self.audio_bytes = 0
        self._sniffer = AudioSniffer(params)
        self._sha = hashlib.sha256()
        self._timeline = _Timeline()
        self._audio_format: AudioFormat | None = None
        self._actions: list[ListenAction] = []

    # Public methods for receiving data.

    def receive_audio(self, data: bytes) -> None:
        """A binary frame. Afterwards, run `actions()`."""
        if self.state is not ListenState.AWAITING_AUDIO and self.state is not ListenState.STREAMING:
            return  # audio after CloseStream is ignored, as at Deepgram
        if not data:
            return  # an empty frame was Deepgram's old close signal; it carries no audio
        self.audio_bytes += len(data)
        self._sha.update(data)
        if self.state is ListenState.STREAMING:
            self._actions.append(FeedAudio(data))
            return
        try:
            sniffed = self._sniffer.feed(data)
        except AudioFormatError as exc:
            self._fatal("unsupported_audio", f"{DATA_0000}: the audio cannot be decoded: {exc}")
            return
        if sniffed is None:
            return
        self.state = next_state(self.state, ListenTrigger.FORMAT_KNOWN)
        self._audio_format = sniffed.audio_format
        self._actions.append(OpenEngine(sniffed.audio_format, self.params.options, word_timings=True))
        if sniffed.payload:
            self._actions.append(FeedAudio(sniffed.payload))

    def receive_text(self, text: str) -> None:
        """A text frame (KeepAlive, Finalize, CloseStream, Configure). Afterwards, run `actions()`."""
        if self.state is ListenState.CLOSED:
            return
        try:
            message = parse_control(text)
        except ControlError as exc:
            self._send(ErrorMessage("SchemaError", str(exc), text[:256]), "error", "bad_request")
            return
        if isinstance(message, Finalize):
            if self.state is ListenState.STREAMING:
                self._actions.append(FinalizeStream())
        elif isinstance(message, CloseStream):
            self._on_close_stream()
        elif isinstance(message, Configure):
            self._send(
                ConfigureFailureMessage(
                    self.request_id,
                    "CONFIGURE_KEYTERMS_NOT_SUPPORTED",
                    "voxrelay takes keyterms only when the stream opens (the keyterm query parameter)",
                )
            )

    def engine_event(self, event: ev.EngineEvent) -> None:
        """An event from the engine stream. Afterwards, run `actions()`."""
        if self.state is ListenState.CLOSED:
            return
        options = self.params.options
        if isinstance(event, ev.InterimResult):
            if options.interim_results:
                self._results(
                    event.transcript,
                    event.start,
                    event.end,
                    event.confidence,
                    event.words,
                    final=False,
                    speech_final=False,
                    from_finalize=False,
                )
        elif isinstance(event, ev.FinalResult):
            self._results(
                event.transcript,
                event.start,
                event.end,
                event.confidence,
                event.words,
                final=True,
                speech_final=event.speech_final,
                from_finalize=event.from_finalize,
            )
        elif isinstance(event, ev.SpeechStarted):
            if options.vad_events:
                self._send(SpeechStartedMessage(event.timestamp))
        elif isinstance(event, ev.UtteranceEnd):
            if options.utterance_end_ms is not None:
                self._send(UtteranceEndMessage(event.last_word_end))
        elif isinstance(event, ev.EngineWarning):
            return  # Deepgram's protocol has no warning message (e.g. an upstream reconnect)
        elif event.fatal:
            self._fatal(event.code, event.message)
        else:
            self._send(ErrorMessage(_variant(event.code), event.message), "error", event.code)

    def engine_flushed(self, audio_seconds: float | None = None) -> None:
        """The engine's events ended: send Metadata and close 1000.

        Args:
            audio_seconds: how much audio the engine got, if the I/O knows; else the last result's end.
        """
        if self.state is ListenState.CLOSED:
            return
        self.state = next_state(self.state, ListenTrigger.ENGINE_FLUSHED)
        self._finish(audio_seconds)

    def fail(self, code: str, message: str, close_code: int | None = None) -> None:
        """A fatal problem found by the I/O (engine failed to open, undecodable audio, a limit)."""
        if self.state is not ListenState.CLOSED:
            self._fatal(code, message, close_code)

    def engine_opened(self) -> None:
        """The engine stream is open: nothing to say (Deepgram sends nothing until the first Results)."""

    def audio_error(self, message: str) -> None:
        """The audio cannot be decoded: Deepgram's DATA-0000 (Error, then close 1008)."""
        self.fail("unsupported_audio", f"{DATA_0000}: {message}")

    def limit_exceeded(self, message: str, close_code: int) -> None:
        """A limit of the gateway was passed: an Error, then close `close_code` (1009 size, 1008 others)."""
        self.fail("limit_exceeded", message, close_code)

    def drain(self) -> None:
        """The server is draining. Deepgram's protocol has no warning message, so the stream is
        closed the way a client's CloseStream closes it: final Results, Metadata, close 1000."""
        if self.state is not ListenState.CLOSED:
            self._on_close_stream()

    def idle_timeout(self, message: str = "") -> None:
        """Neither audio nor a text message for the idle window: close 1011 NET-0001, like Deepgram."""
        if self.state in (ListenState.AWAITING_AUDIO, ListenState.STREAMING):
            self.state = next_state(self.state, ListenTrigger.FATAL)
            self._actions.append(CloseSocket(1011, NET_0001_REASON, error="limit_exceeded"))

    def client_gone(self) -> None:
        """The socket closed under us: the I/O releases the engine stream; nothing is sent."""
        self.state = next_state(self.state, ListenTrigger.DISCONNECT)

    # Public methods for sending data.

    def actions(self) -> list[ListenAction]:
        """Actions to run now, oldest first; the list is handed over and cleared."""
        actions, self._actions = self._actions, []
        return actions

    @property
    def closed(self) -> bool:
        return self.state is ListenState.CLOSED

    @property
    def accepting_input(self) -> bool:
        """True while the idle timeout applies (before CloseStream)."""
        return self.waiting_for_input

    @property
    def waiting_for_input(self) -> bool:
        """True while the idle timeout applies (before CloseStream)."""
        return self.state in (ListenState.AWAITING_AUDIO, ListenState.STREAMING)

    # Private helpers.

    def _on_close_stream(self) -> None:
        if self.state is ListenState.AWAITING_AUDIO:
            self.state = next_state(self.state, ListenTrigger.CLOSE_STREAM)
            self._finish(0.0)
        elif self.state is ListenState.STREAMING:
            self.state = next_state(self.state, ListenTrigger.CLOSE_STREAM)
            self._actions.append(EndStream())

    def _finish(self, audio_seconds: float | None) -> None:
        duration = audio_seconds if audio_seconds is not None else self._timeline.last_end
        channels = self._audio_format.channels if self._audio_format is not None else self.params.channels
        self._send(
            MetadataMessage(
                self.request_id,
                self.model,
                self._sha.hexdigest(),
                self.created,
                duration,
                channels,
                self.params.warnings,
            )
        )
        self._actions.append(CloseSocket(1000, ""))

    def _results(
        self,
        transcript: str,
        start: float,
        end: float,
        confidence: float,
        words: tuple[ev.Word, ...],
        *,
        final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> None:
        if words:
            end = max(end, words[-1].end)
        begin, duration = self._timeline.span(start, end, final=final)
        self._send(
            ResultsMessage(
                self.request_id,
                self.model,
                begin,
                duration,
                final,
                speech_final,
                from_finalize,
                transcript,
                confidence,
                words,
            ),
            "final" if final else "interim",
        )

    def _send(self, message: ServerMessage, kind: SendKind = "other", code: str | None = None) -> None:
        self._actions.append(SendText(encode(message), kind, code))

    def _fatal(self, code: str, message: str, close_code: int | None = None) -> None:
        self.state = next_state(self.state, ListenTrigger.FATAL)
        self._send(ErrorMessage(_variant(code), message), "error", code)
        reason = message if message.startswith(("DATA-", "NET-")) else f"voxrelay {code}: {message}"
        self._actions.append(CloseSocket(close_code or _ERROR_CLOSE.get(code, 1011), _truncate(reason)))


def _variant(code: str) -> str:
    return {"unsupported_audio": "DataError", "bad_request": "RequestError"}.get(code, "EngineError")


def _truncate(reason: str, limit: int = 123) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    data = reason.encode()
    return reason if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "..."
