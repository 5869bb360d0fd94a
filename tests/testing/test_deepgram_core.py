"""The fake Deepgram's sans-I/O core: handshakes, audio and control messages in, answers out. No event loop."""

from __future__ import annotations

import json
import time

from voxrelay.protocol.deepgram_live import (
    NET_0001_REASON,
    MetadataMessage,
    ResultsMessage,
    SpeechStartedMessage,
    UtteranceEndMessage,
    encode,
)
from voxrelay.testing.deepgram_core import Close, Drop, FakeListenApi, Hangup, ListenStream, Outgoing, Stall
from voxrelay.testing.deepgram_script import Script

KEY = "core-test-key"
AUTH = {"Authorization": f"Token {KEY}"}
LINEAR16 = "/v1/listen?model=m&encoding=linear16&sample_rate=16000&channels=1"
TENTH = b"\x01\x00" * 1600  # 100 ms of 16 kHz mono linear16


def open_stream(query: str = "", script: Script | None = None, api: FakeListenApi | None = None) -> ListenStream:
    api = api or FakeListenApi(api_key=KEY, default=script or Script())
    return api.open(LINEAR16 + query, AUTH)


def feed(stream: ListenStream, tenths: int) -> list[Outgoing]:
    out: list[Outgoing] = []
    for _ in range(tenths):
        stream.receive_audio(TENTH)
        out += stream.outgoing()
    return out


def results(out: list[Outgoing]) -> list[ResultsMessage]:
    return [m for m in out if isinstance(m, ResultsMessage)]


# The handshake.


def test_the_handshake_checks_path_key_and_script() -> None:
    api = FakeListenApi(api_key=KEY, scripts={"busy": Script(reject_status=429)})
    assert api.refusal(LINEAR16, AUTH) is None
    assert api.refusal(LINEAR16, {"Authorization": f"token {KEY}"}) is None  # the scheme is case-insensitive
    refused = api.refusal(LINEAR16, {"Authorization": "Token wrong"})
    assert refused is not None and refused.status == 401 and json.loads(refused.body)["err_code"] == "INVALID_AUTH"
    assert api.refusal(LINEAR16, {}) is not None and api.refusal(LINEAR16, {"Authorization": KEY}) is not None
    missing = api.refusal("/v2/listen", AUTH)
    assert missing is not None and missing.status == 404
    busy = api.refusal("/v1/listen?model=busy", AUTH)
    assert busy is not None and busy.status == 429
    assert FakeListenApi().refusal("/v1/listen", {}) is None  # no key: any request


def test_open_records_the_connection_and_picks_its_script() -> None:
    slow = Script(reply_delay_s=1.0)
    api = FakeListenApi(api_key=KEY, scripts={"slow": slow})
    stream = api.open("/v1/listen?model=slow&interim_results=true", {**AUTH, "Sec-WebSocket-Extensions": "x"})
    record = api.connections[0]
    assert stream.script is slow and record.authorized and record.extensions == "x"
    assert record.param("interim_results") == "true" and record.param("absent") is None
    assert api.open_connections == 1
    stream.closed()
    assert record.closed and api.open_connections == 0
    assert FakeListenApi(keep_records=False).open("/v1/listen", {}) and not FakeListenApi().connections


# Audio in, Results out.


def test_interims_grow_and_a_final_comes_per_final_every_s() -> None:
    stream = open_stream("&interim_results=true", Script(interim_every_s=0.25, final_every_s=1.0))
    out = feed(stream, 10)
    interims = [r for r in results(out) if not r.is_final]
    finals = [r for r in results(out) if r.is_final]
    # At 0.3, 0.5, 0.8 and 1.0 s of audio (100 ms frames), then the final at 1.0 s.
    assert [r.transcript for r in interims] == ["the", "the quick", "the quick brown", "the quick brown fox"]
    assert len(finals) == 1 and finals[0].speech_final and not finals[0].from_finalize
    assert finals[0].transcript == Script().transcript and (finals[0].start, finals[0].duration) == (0.0, 1.0)
    assert [w.word for w in finals[0].words][:2] == ["the", "quick"] and finals[0].words[-1].end == 1.0
    second = results(feed(stream, 3))
    assert second and second[0].start == 1.0 and not second[0].is_final  # the next segment starts after the final


def test_no_interims_unless_asked_and_vad_messages_only_when_asked() -> None:
    quiet = open_stream("", Script(final_every_s=0.5))
    assert [r.is_final for r in results(feed(quiet, 5))] == [True]
    chatty = open_stream("&vad_events=true&utterance_end_ms=1000", Script(interim_every_s=0, final_every_s=0.5))
    out = feed(chatty, 5)
    assert [type(m) for m in out] == [SpeechStartedMessage, ResultsMessage, UtteranceEndMessage]
    assert isinstance(out[2], UtteranceEndMessage) and out[2].last_word_end == 0.5
    assert [type(m) for m in feed(chatty, 1)] == [SpeechStartedMessage]  # speech starts again after the final
    muted = open_stream("&vad_events=true", Script(interim_every_s=0, final_every_s=0.5, speech_started=False))
    assert [type(m) for m in feed(muted, 5)] == [ResultsMessage]


def test_finalize_flushes_and_closestream_ends_with_metadata_and_1000() -> None:
    stream = open_stream()
    feed(stream, 3)
    stream.receive_text('{"type": "KeepAlive"}')
    assert stream.outgoing() == []
    stream.receive_text('{"type": "Finalize"}')
    flushed = results(stream.outgoing())
    assert len(flushed) == 1 and flushed[0].from_finalize and not flushed[0].speech_final
    stream.receive_text('{"type": "Finalize"}')
    assert stream.outgoing() == []  # nothing new to finalize
    feed(stream, 2)
    stream.receive_text('{"type": "CloseStream"}')
    out = stream.outgoing()
    assert [type(m) for m in out] == [ResultsMessage, MetadataMessage, Close]
    assert isinstance(out[1], MetadataMessage) and out[1].duration == 0.5 and out[2] == Close(1000)
    assert stream.record.messages == ["KeepAlive", "Finalize", "Finalize", "CloseStream"]
    assert (stream.record.keepalives, stream.record.finalizes, stream.record.close_streams) == (1, 2, 1)
    assert feed(stream, 5) == [] and stream.record.audio_bytes == 10 * len(TENTH)  # ended: counted, not answered
    json.loads(encode(out[1]))  # every message encodes to Deepgram's JSON


def test_ignore_close_stream_and_unknown_messages() -> None:
    stream = open_stream("", Script(ignore_close_stream=True))
    feed(stream, 2)
    stream.receive_text("not json")
    stream.receive_text('{"type": "CloseStream"}')
    assert stream.outgoing() == [] and stream.record.messages == ["invalid", "CloseStream"]


def test_words_from_audio_are_checksums_of_the_audio() -> None:
    script = Script(interim_every_s=0, final_every_s=0.5, words_from_audio=True)
    a, b, c = open_stream("", script), open_stream("", script), open_stream("", script)
    same = results(feed(a, 5))[0].transcript
    assert same == results(feed(b, 5))[0].transcript
    assert len(same.split()) == 5 and all(w.startswith("w") for w in same.split())  # one word per 100 ms
    c.receive_audio(b"\x02\x00" * 8000)  # 0.5 s of other audio
    other = results(c.outgoing())[0].transcript
    assert len(other.split()) == 5 and other != same


def test_stamped_transcripts_carry_the_monotonic_clock() -> None:
    stream = open_stream("", Script(interim_every_s=0, final_every_s=0.5, stamp_transcripts=True))
    before = time.monotonic_ns()
    text, stamp = results(feed(stream, 5))[0].transcript.rsplit(" t", 1)
    assert text == Script().transcript and before <= int(stamp) <= time.monotonic_ns()


# Faults.


def fault_stream(api: FakeListenApi, model: str) -> ListenStream:
    return api.open(f"/v1/listen?model={model}&encoding=linear16&sample_rate=16000", AUTH)


def test_faults_after_so_many_bytes() -> None:
    api = FakeListenApi(
        api_key=KEY,
        scripts={
            "drop": Script(fault="drop", fault_after_bytes=6400),
            "close": Script(fault="close", fault_after_bytes=6400, close_code=1013, close_reason="later"),
            "junk": Script(interim_every_s=0, fault="malformed", fault_after_bytes=6400),
        },
    )
    drop = fault_stream(api, "drop")
    assert Drop() not in feed(drop, 1) and feed(drop, 1) == [Drop()] and drop.ended
    close = fault_stream(api, "close")
    assert feed(close, 2) == [Hangup(1013, "later")] and feed(close, 5) == []
    close.receive_text('{"type": "CloseStream"}')
    assert close.outgoing() == [] and close.record.close_streams == 0  # a server that gave up answers nothing
    junk = fault_stream(api, "junk")
    assert feed(junk, 2)[-1] == "{this is not json" and not junk.ended


def test_fault_once_spares_the_reconnect() -> None:
    api = FakeListenApi(scripts={"once": Script(fault="drop", fault_after_bytes=3200, fault_once=True)})
    assert Drop() in feed(fault_stream(api, "once"), 2)
    assert Drop() not in feed(fault_stream(api, "once"), 20)


def test_stall_and_idle_timeout() -> None:
    stall = open_stream("", Script(stall_after_bytes=9600, stall_s=2.0))
    assert feed(stall, 2) == [] and feed(stall, 1)[-1] == Stall(2.0) and stall.ended
    idle = open_stream("", Script(idle_timeout_s=0.5))
    before = idle.idle_timeout_s
    idle.idle()
    after = idle.idle_timeout_s
    assert before == 0.5 and after is None and idle.outgoing() == [Hangup(1011, NET_0001_REASON)]
    assert open_stream().idle_timeout_s is None


def test_containers_are_timed_at_a_nominal_rate() -> None:
    stream = FakeListenApi().open("/v1/listen?encoding=webm", {})
    stream.receive_audio(b"\x00" * 4000)
    assert stream.audio_s == 1.0
