import json

import pytest

from voxrelay.protocol import messages as m


def test_configure_with_inline_options() -> None:
    msg = m.parse_client_text(
        json.dumps(
            {
                "action": "configure",
                "audio_format": {"encoding": "linear16", "sample_rate": 48000, "channels": 2},
                "interim_results": False,
                "endpointing": 500,
                "keyterms": ["voxrelay"],
            }
        )
    )
    assert isinstance(msg, m.Configure)
    assert msg.audio_format.sample_rate == 48000 and msg.audio_format.channels == 2
    assert msg.audio_format.bytes_per_second == 48000 * 2 * 2
    assert msg.options.interim_results is False and msg.options.endpointing == 500
    assert msg.options.keyterms == ("voxrelay",)


def test_configure_defaults() -> None:
    msg = m.parse_client_text('{"action":"configure"}')
    assert isinstance(msg, m.Configure)
    assert msg.audio_format == m.AudioFormat(encoding="linear16", sample_rate=16000, channels=1)
    assert msg.options.interim_results is True and msg.options.endpointing == 300


def test_container_formats_have_no_byte_rate() -> None:
    msg = m.parse_client_text('{"action":"configure","audio_format":{"encoding":"webm"}}')
    assert isinstance(msg, m.Configure) and msg.audio_format.is_container
    assert msg.audio_format.bytes_per_second is None


def test_control_messages() -> None:
    assert m.parse_client_text('{"action":"finalize"}') == m.Finalize()
    assert m.parse_client_text('{"action":"stop"}') == m.Stop()


@pytest.mark.parametrize(
    ("text", "code", "needle"),
    [
        ("not json", "bad_request", "not valid JSON"),
        ("[1,2]", "bad_request", "JSON object"),
        ('{"action":"dance"}', "bad_request", "unknown action 'dance'"),
        ('{"action":"configure","audio_format":{"encoding":"mp3"}}', "unsupported_audio", "encoding"),
        ('{"action":"configure","audio_format":{"sample_rate":96000}}', "unsupported_audio", "sample_rate"),
        ('{"action":"configure","audio_format":{"channels":6}}', "unsupported_audio", "channels"),
        ('{"action":"configure","endpointing":-5}', "bad_request", "endpointing"),
        ('{"action":"configure","colour":"blue"}', "bad_request", "colour"),
    ],
)
def test_bad_client_text(text: str, code: str, needle: str) -> None:
    with pytest.raises(m.ProtocolError) as info:
        m.parse_client_text(text)
    assert info.value.code == code
    assert needle in info.value.message


def test_encode_puts_type_first_and_rounds_times() -> None:
    text = m.encode(m.FinalTranscript("Hello there.", 0.12345, 1.98765, True))
    assert text.startswith('{"type":"final_transcript"')
    assert json.loads(text) == {
        "type": "final_transcript",
        "transcript": "Hello there.",
        "start": 0.123,
        "end": 1.988,
        "speech_final": True,
    }
    assert json.loads(m.encode(m.Stopped())) == {"type": "stopped"}
    assert json.loads(m.encode(m.ErrorMessage("bad_request", "no")))["code"] == "bad_request"


def test_g711_formats_are_raw_one_byte_a_sample() -> None:
    mulaw = m.AudioFormat(encoding="mulaw", sample_rate=8000)
    assert not mulaw.is_container and mulaw.bytes_per_second == 8000
    assert m.AudioFormat(encoding="alaw", sample_rate=8000, channels=2).bytes_per_second == 16000
    assert m.AudioFormat(encoding="webm").is_container and m.AudioFormat().bytes_per_second == 32000


def test_configure_dictation_needs_punctuation() -> None:
    configure = m.parse_client_text(json.dumps({"action": "configure", "dictation": True}))
    assert isinstance(configure, m.Configure) and configure.options.dictation
    with pytest.raises(m.ProtocolError) as caught:
        m.parse_client_text(json.dumps({"action": "configure", "dictation": True, "punctuate": False}))
    assert caught.value.code == "bad_request"
    assert caught.value.message == "invalid configure: dictation requires punctuate (or smart_format) to be true"


@pytest.mark.parametrize(
    "message",
    [
        m.Ready("abc", "local"),
        m.InterimTranscript("hello"),
        m.FinalTranscript("Hello.", 0.5, 1.25, True),
        m.SpeechStarted(0.5),
        m.UtteranceEnd(1.25),
        m.ErrorMessage("bad_request", "no"),
        m.Warning("draining", "soon"),
        m.Stopped(),
    ],
)
def test_every_server_message_decodes_back(message: m.ServerMessage) -> None:
    assert m.decode_server_text(m.encode(message)) == message


def test_decoding_skips_unknown_types_and_fields_and_refuses_non_messages() -> None:
    assert m.decode_server_text('{"type": "from_the_future", "x": 1}') is None
    assert m.decode_server_text('{"type": "stopped", "extra": 1}') == m.Stopped()
    for text in ("[1]", "not json", '{"no_type": 1}', '{"type": "ready"}'):
        with pytest.raises(m.ProtocolError):
            m.decode_server_text(text)


def test_dictation_without_an_endpointing_waits_longer_and_an_explicit_one_is_kept() -> None:
    def options(**fields: object) -> m.StreamOptions:
        configure = m.parse_client_text(json.dumps({"action": "configure", **fields}))
        assert isinstance(configure, m.Configure)
        return configure.options

    assert options(dictation=True).endpointing == 800
    assert options(dictation=True, endpointing=300).endpointing == 300
    assert options().endpointing == options(dictation=False).endpointing == 300
