"""The /v1/listen session state machine and audio sniffing, synchronously: frames and engine events in, actions out."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import wave

import pytest

from voxrelay.engines.base import EngineError, FinalResult, InterimResult, SpeechStarted, UtteranceEnd, Word
from voxrelay.protocol.deepgram_live import (
    NET_0001_REASON,
    AudioFormatError,
    AudioSniffer,
    CloseSocket,
    EndStream,
    FeedAudio,
    FinalizeStream,
    ListenAction,
    ListenProtocolError,
    ListenSession,
    ListenState,
    ListenTrigger,
    ModelInfo,
    OpenStream,
    SendText,
    next_state,
    parse_params,
)

MODEL = ModelInfo("tiny.en", "0.1.0", "local")


def session(**params: object) -> ListenSession:
    items = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()]
    return ListenSession("req-1", parse_params(items), MODEL, "2026-11-24T00:00:00.000Z")


def sent(actions: list[ListenAction]) -> list[dict]:
    return [json.loads(a.text) for a in actions if isinstance(a, SendText)]


def wav_bytes(rate: int = 8000, channels: int = 1, frames: int = 800, extra_chunk: bool = True) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * frames * channels)
    data = buf.getvalue()
    if extra_chunk:  # a LIST chunk before data, as many encoders write
        data = data[:36] + b"LIST" + struct.pack("<I", 4) + b"INFO" + data[36:]
    return data


# Sniffing the format.


def test_linear16_needs_no_sniffing() -> None:
    sniffed = AudioSniffer(parse_params([("encoding", "linear16"), ("sample_rate", "22050")])).feed(b"\x01")
    assert sniffed is not None
    assert (sniffed.audio_format.encoding, sniffed.audio_format.sample_rate, sniffed.payload) == (
        "linear16",
        22050,
        b"\x01",
    )


@pytest.mark.parametrize(("magic", "encoding"), [(b"OggS", "ogg"), (b"\x1a\x45\xdf\xa3", "webm")])
def test_containers_by_magic_even_split(magic: bytes, encoding: str) -> None:
    sniffer = AudioSniffer(parse_params([]))
    assert sniffer.feed(magic[:2]) is None
    sniffed = sniffer.feed(magic[2:] + b"rest")
    assert sniffed is not None and sniffed.audio_format.encoding == encoding and sniffed.payload == magic + b"rest"


def test_opus_encoding_accepts_ogg_or_webm_only() -> None:
    params = parse_params([("encoding", "opus"), ("sample_rate", "48000")])
    assert AudioSniffer(params).feed(b"OggS....").audio_format.encoding == "ogg"  # type: ignore[union-attr]
    with pytest.raises(AudioFormatError, match="expects Ogg"):
        AudioSniffer(params).feed(b"RIFF....WAVE")


def test_wav_is_unwrapped_to_linear16_across_frames() -> None:
    data = wav_bytes(rate=8000, channels=2)
    sniffer = AudioSniffer(parse_params([]))
    assert sniffer.feed(data[:20]) is None and sniffer.feed(data[20:50]) is None
    sniffed = sniffer.feed(data[50:])
    assert sniffed is not None
    fmt = sniffed.audio_format
    assert (fmt.encoding, fmt.sample_rate, fmt.channels) == ("linear16", 8000, 2)
    assert sniffed.payload == b"\x01\x00" * 800 * 2  # the PCM, header gone


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"hello, this is text", "could not detect a container"),
        (b"RIFF\x00\x00\x00\x00AVI ", "not WAVE"),
        (wav_bytes(rate=96000), "outside 8-48 kHz"),
    ],
)
def test_undecodable_first_bytes(data: bytes, words: str) -> None:
    with pytest.raises(AudioFormatError, match=words):
        AudioSniffer(parse_params([])).feed(data)


def test_wav_that_is_not_pcm16() -> None:
    data = bytearray(wav_bytes(extra_chunk=False))
    data[34:36] = struct.pack("<H", 8)  # 8 bits per sample
    with pytest.raises(AudioFormatError, match="16-bit PCM"):
        AudioSniffer(parse_params([])).feed(bytes(data))


# The session.


def test_first_audio_opens_the_stream_then_audio_is_fed() -> None:
    s = session(encoding="linear16", sample_rate=16000)
    s.receive_audio(b"\x00\x01" * 10)
    [open_, feed] = s.actions()
    assert isinstance(open_, OpenStream) and open_.audio_format.sample_rate == 16000
    assert feed == FeedAudio(b"\x00\x01" * 10)
    s.receive_audio(b"\x02\x03")
    assert s.actions() == [FeedAudio(b"\x02\x03")]
    s.receive_audio(b"")  # the deprecated empty frame carries nothing
    assert s.actions() == [] and s.state is ListenState.STREAMING


def test_container_opens_once_the_header_is_seen() -> None:
    s = session()
    s.receive_audio(b"\x1a\x45")
    assert s.actions() == []
    s.receive_audio(b"\xdf\xa3more")
    [open_, feed] = s.actions()
    assert isinstance(open_, OpenStream) and open_.audio_format.encoding == "webm"
    assert feed == FeedAudio(b"\x1a\x45\xdf\xa3more")


def test_results_tile_the_audio_and_carry_words() -> None:
    s = session(encoding="linear16", sample_rate=16000, interim_results=True)
    s.receive_audio(b"\x00\x00")
    s.actions()
    words = (Word("hi", 0.4, 0.7, 0.9, "Hi"),)
    s.engine_event(InterimResult("Hi", 0.4, 0.8, 0.9, words))
    s.engine_event(FinalResult("Hi.", 0.35, 0.75, speech_final=True, confidence=0.9, words=words))
    s.engine_event(InterimResult("there", 1.5, 1.9, 0.8))
    s.engine_event(FinalResult("There.", 1.4, 2.0, speech_final=False, from_finalize=True, confidence=0.8))
    interim, first, interim2, second = sent(s.actions())
    assert (interim["is_final"], interim["start"], interim["duration"]) == (False, 0.0, 0.8)
    assert (first["is_final"], first["speech_final"], first["start"], first["duration"]) == (True, True, 0.0, 0.75)
    assert first["channel"]["alternatives"][0]["words"][0]["punctuated_word"] == "Hi"
    assert (interim2["start"], interim2["duration"]) == (0.75, 1.15)  # from the last final's end
    assert (second["start"], second["duration"], second["from_finalize"]) == (0.75, 1.25, True)
    assert {m["metadata"]["request_id"] for m in (interim, first, interim2, second)} == {"req-1"}


def test_what_was_not_asked_for_is_not_sent() -> None:
    s = session(encoding="linear16", sample_rate=16000)  # Deepgram defaults: no interims, VAD events, UtteranceEnd
    s.engine_event(SpeechStarted(0.3))
    s.engine_event(InterimResult("hi", 0.3, 0.6))
    s.engine_event(UtteranceEnd(0.6))
    assert s.actions() == []
    s = session(encoding="linear16", sample_rate=16000, vad_events=True, utterance_end_ms=1000)
    s.engine_event(SpeechStarted(0.3))
    s.engine_event(UtteranceEnd(0.6))
    assert [m["type"] for m in sent(s.actions())] == ["SpeechStarted", "UtteranceEnd"]


def test_finalize_and_close_stream_flush_then_metadata_and_1000() -> None:
    s = session(encoding="linear16", sample_rate=16000, tag="x")
    audio = b"\x05\x00" * 1600
    s.receive_audio(audio)
    s.actions()
    s.receive_text('{"type": "Finalize"}')
    assert s.actions() == [FinalizeStream()]
    s.receive_text('{"type": "KeepAlive"}')
    assert s.actions() == []
    s.receive_text('{"type": "CloseStream"}')
    assert s.actions() == [EndStream()] and s.state is ListenState.CLOSING and not s.waiting_for_input
    s.receive_audio(b"\x01\x00")  # audio after CloseStream is ignored
    s.receive_text('{"type": "CloseStream"}')
    assert s.actions() == []
    s.engine_event(FinalResult("Last words.", 0.0, 0.1, speech_final=True))
    s.engine_flushed(0.1)
    *results, metadata, close = s.actions()
    assert [json.loads(r.text)["type"] for r in results] == ["Results"]  # type: ignore[union-attr]
    meta = json.loads(metadata.text)  # type: ignore[union-attr]
    assert meta["type"] == "Metadata" and meta["duration"] == 0.1 and meta["channels"] == 1
    assert meta["sha256"] == hashlib.sha256(audio).hexdigest()
    assert meta["warnings"][0]["parameter"] == "tag"
    assert close == CloseSocket(1000, "") and s.closed


def test_close_stream_before_any_audio() -> None:
    s = session()
    s.receive_text('{"type": "Finalize"}')
    assert s.actions() == []
    s.receive_text('{"type": "CloseStream"}')
    metadata, close = s.actions()
    assert json.loads(metadata.text)["duration"] == 0 and close == CloseSocket(1000, "")  # type: ignore[union-attr]


def test_bad_text_is_answered_and_the_stream_goes_on() -> None:
    s = session(encoding="linear16", sample_rate=16000)
    s.receive_text("hello")
    s.receive_text('{"type": "Configure", "keyterms": ["x"]}')
    error, failure = sent(s.actions())
    assert error == {"type": "Error", "variant": "SchemaError", "description": error["description"], "message": "hello"}
    assert failure["type"] == "ConfigureFailure" and failure["code"] == "CONFIGURE_KEYTERMS_NOT_SUPPORTED"
    assert s.state is ListenState.AWAITING_AUDIO


def test_undecodable_audio_is_data_0000() -> None:
    s = session()
    s.receive_audio(b"definitely not audio")
    error, close = s.actions()
    assert json.loads(error.text)["variant"] == "DataError"  # type: ignore[union-attr]
    assert isinstance(close, CloseSocket) and close.code == 1008 and close.reason.startswith("DATA-0000")
    assert s.closed


def test_idle_timeout_is_net_0001_but_not_while_flushing() -> None:
    s = session(encoding="linear16", sample_rate=16000)
    s.idle_timeout()
    assert s.actions() == [CloseSocket(1011, NET_0001_REASON)] and s.closed
    s = session(encoding="linear16", sample_rate=16000)
    s.receive_audio(b"\x00\x00")
    s.receive_text('{"type": "CloseStream"}')
    s.actions()
    s.idle_timeout()
    assert s.actions() == [] and s.state is ListenState.CLOSING


def test_engine_errors() -> None:
    s = session(encoding="linear16", sample_rate=16000)
    s.engine_event(EngineError("engine_error", "a hiccup", fatal=False))
    [hiccup] = sent(s.actions())
    assert hiccup["type"] == "Error" and hiccup["variant"] == "EngineError" and not s.closed
    s.engine_event(EngineError("engine_error", "it broke"))
    _error, close = s.actions()
    assert isinstance(close, CloseSocket) and close.code == 1011 and "it broke" in close.reason
    s.engine_event(FinalResult("late", 0, 1, speech_final=True))  # nothing after the close
    s.engine_flushed()
    assert s.actions() == []


def test_long_close_reasons_fit_a_close_frame() -> None:
    s = session()
    s.fail("engine_unavailable", "é" * 200)
    _, close = s.actions()
    assert len(close.reason.encode()) <= 123  # type: ignore[union-attr]


def test_client_gone_sends_nothing() -> None:
    s = session()
    s.client_gone()
    s.engine_flushed()
    assert s.actions() == [] and s.closed


def test_transition_table_refuses_illegal_moves() -> None:
    with pytest.raises(ListenProtocolError, match="can't handle 'close_stream' when the stream is 'closing'"):
        next_state(ListenState.CLOSING, ListenTrigger.CLOSE_STREAM)
