"""The Deepgram Live (`/v1/listen`) codec: one connection after the upgrade, sans-I/O.

The wire format lives in `deepgram_params` (query parameters, credential forms) and
`deepgram_messages` (control frames in, server messages out); both are re-exported
here. `ListenSession` is the codec the connection runner (`voxrelay.gateway.connection`)
drives, like every endpoint's (see `protocol.codec.Codec`): it is fed `receive_audio`,
`receive_text`, `engine_event`, `engine_flushed`, `fail`, `limit_exceeded`, `idle_timeout`,
`drain` and `client_gone`, and after every call the runner carries out `actions()` in order.

Its lifecycle is the one table of every session (`protocol.state.TRANSITIONS`); `ListenState` only
names those states in Deepgram's terms (awaiting audio, streaming, closing, closed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

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
from voxrelay.protocol.deepgram_messages import (
    CloseStream,
    Configure,
    ConfigureFailureMessage,
    ControlError,
    ControlMessage,
    ErrorMessage,
    Finalize,
    KeepAlive,
    MetadataMessage,
    ModelInfo,
    ResultsMessage,
    ServerMessage,
    SpeechStartedMessage,
    UtteranceEndMessage,
    encode,
    parse_control,
)
from voxrelay.protocol.deepgram_params import (
    DATA_0000,
    NET_0001_REASON,
    ListenParams,
    ListenRequestError,
    ParamWarning,
    authorized,
    parse_params,
    pick_subprotocol,
)
from voxrelay.protocol.messages import AudioFormat
from voxrelay.protocol.session import SessionCore
from voxrelay.protocol.sniff import AudioFormatError, AudioSniffer, SniffedFormat
from voxrelay.protocol.state import (
    TRANSITIONS,
    ListenProtocolError,
    ListenState,
    ListenTrigger,
    SessionState,
    Trigger,
    listen_state,
)
from voxrelay.protocol.state import next_listen_state as next_state

# The codec, and (re-exported) the wire format it speaks.
__all__ = [
    "AudioFormatError", "AudioSniffer", "CloseSocket", "CloseStream", "Configure", "ConfigureFailureMessage",
    "ControlError", "ControlMessage", "DATA_0000", "EndStream", "ErrorMessage", "FeedAudio", "Finalize",
    "FinalizeStream", "KeepAlive", "ListenAction", "ListenParams", "ListenProtocolError", "ListenRequestError",
    "ListenSession", "ListenState", "ListenTrigger", "MetadataMessage", "ModelInfo", "NET_0001_REASON", "OpenStream",
    "ParamWarning", "ResultsMessage", "SendText", "ServerMessage", "SniffedFormat", "SpeechStartedMessage",
    "TRANSITIONS", "UtteranceEndMessage", "authorized", "encode", "next_state", "parse_control", "parse_params",
    "pick_subprotocol",
]

# The shared action vocabulary (actions.py), under the names this codec has always used.

OpenStream = OpenEngine
FinalizeStream = FinalizeEngine
EndStream = CloseEngine

ListenAction = Action


# The session: one transition table, then the class.


_ERROR_CLOSE = {"unsupported_audio": 1008, "bad_request": 1008, "limit_exceeded": 1008, "quota_exceeded": 1008}


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


class ListenSession(SessionCore[SendText]):
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
        super().__init__()
        self._sniffer = AudioSniffer(params)
        self._sha = hashlib.sha256()
        self._timeline = _Timeline()
        self._audio_format: AudioFormat | None = None

    # Public methods for receiving data.

    def receive_audio(self, data: bytes) -> None:
        """A binary frame. Afterwards, run `actions()`."""
        if self._state is not SessionState.CONFIGURING and self._state is not SessionState.STREAMING:
            return  # audio after CloseStream is ignored, as at Deepgram
        if not data:
            return  # an empty frame was Deepgram's old close signal; it carries no audio
        self.audio_bytes += len(data)
        self._sha.update(data)
        if self._state is SessionState.STREAMING:
            self._emit(FeedAudio(data))
            return
        try:
            sniffed = self._sniffer.feed(data)
        except AudioFormatError as exc:
            self._fatal("unsupported_audio", f"{DATA_0000}: the audio cannot be decoded: {exc}")
            return
        if sniffed is None:
            return
        self._move(Trigger.CONFIGURE)
        self._audio_format = sniffed.audio_format
        self._emit(OpenEngine(sniffed.audio_format, self.params.options, word_timings=True))
        if sniffed.payload:
            self._emit(FeedAudio(sniffed.payload))

    def receive_text(self, text: str) -> None:
        """A text frame (KeepAlive, Finalize, CloseStream, Configure). Afterwards, run `actions()`."""
        if self._state is SessionState.CLOSED:
            return
        try:
            message = parse_control(text)
        except ControlError as exc:
            self._send(ErrorMessage("SchemaError", str(exc), text[:256]), "error", "bad_request")
            return
        if isinstance(message, Finalize):
            if self._state is SessionState.STREAMING:
                self._emit(FinalizeStream())
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
        if self._state is SessionState.CLOSED:
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
        if self._state is SessionState.CLOSED:
            return
        self._move(Trigger.ENGINE_FLUSHED)
        if not self._quota_ended():  # the quota's Error and close 1008 come in place of Metadata and 1000
            self._finish(audio_seconds)

    def fail(self, code: str, message: str, close_code: int | None = None) -> None:
        """A fatal problem found by the I/O (engine failed to open, undecodable audio, a limit)."""
        if self._state is not SessionState.CLOSED:
            self._fatal(code, message, close_code)

    def engine_opened(self) -> None:
        """The engine stream is open: nothing to say (Deepgram sends nothing until the first Results)."""

    def audio_error(self, message: str) -> None:
        """The audio cannot be decoded: Deepgram's DATA-0000 (Error, then close 1008)."""
        self.fail("unsupported_audio", f"{DATA_0000}: {message}")

    def limit_exceeded(self, message: str, close_code: int) -> None:
        """A limit of the gateway was passed: an Error, then close `close_code` (1009 size, 1008 others)."""
        self.fail("limit_exceeded", message, close_code)

    def drain_notice(self) -> None:
        """Deepgram's protocol has no warning message: nothing is said before the close."""

    def drain(self) -> None:
        """The server is draining. Deepgram's protocol has no warning message, so the stream is
        closed the way a client's CloseStream closes it: final Results, Metadata, close 1000."""
        if self._state is not SessionState.CLOSED:
            self._on_close_stream()

    def idle_timeout(self, message: str = "") -> None:
        """Neither audio nor a text message for the idle window: close 1011 NET-0001, like Deepgram."""
        if self._state in (SessionState.CONFIGURING, SessionState.STREAMING):
            self._move(Trigger.FATAL)
            self._emit(CloseSocket(1011, NET_0001_REASON, error="limit_exceeded"))

    # Public methods for sending data.

    @property
    def state(self) -> ListenState:
        """The session's state, in Deepgram's terms."""
        return listen_state(self._state)

    @property
    def accepting_input(self) -> bool:
        """True while the idle timeout applies (before CloseStream)."""
        return self.waiting_for_input

    @property
    def waiting_for_input(self) -> bool:
        """True while the idle timeout applies (before CloseStream)."""
        return self._state in (SessionState.CONFIGURING, SessionState.STREAMING)

    # Private helpers.

    def _on_close_stream(self) -> None:
        if self._state is SessionState.CONFIGURING:  # nothing to flush
            self._move(Trigger.CLOSE)
            self._finish(0.0)
        elif self._state is SessionState.STREAMING:
            self._move(Trigger.STOP)
            self._emit(EndStream())

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
        self._emit(CloseSocket(1000, ""))

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
        self._emit(SendText(encode(message), kind, code))

    def _fatal(self, code: str, message: str, close_code: int | None = None) -> None:
        self._move(Trigger.FATAL)
        self._send(ErrorMessage(_variant(code), message), "error", code)
        reason = message if message.startswith(("DATA-", "NET-")) else f"voxrelay {code}: {message}"
        self._emit(CloseSocket(close_code or _ERROR_CLOSE.get(code, 1011), _truncate(reason)))


def _variant(code: str) -> str:
    variants = {"unsupported_audio": "DataError", "bad_request": "RequestError", "quota_exceeded": "QuotaExceeded"}
    return variants.get(code, "EngineError")


def _truncate(reason: str, limit: int = 123) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    data = reason.encode()
    return reason if len(data) <= limit else data[: limit - 3].decode(errors="ignore") + "..."
