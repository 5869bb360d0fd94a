"""client/simple.py: `transcribe` a file or its bytes through a real gateway, from plain code and from a running loop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.fakes import EchoEngine
from tests.support import ServerThread, clip, wer
from voxrelay.client import AudioFileError, GatewayRefused, atranscribe, transcribe
from voxrelay.protocol.messages import FinalTranscript
from voxrelay.settings import Settings

KEY = f"vx-simple-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def keyed_server() -> Iterator[ServerThread]:
    server = ServerThread(Settings(port=0, api_keys=KEY, handshakes_per_minute=0), EchoEngine()).start()
    yield server
    server.stop()


def test_a_path_gives_text_and_timed_segments(local_engine_server: ServerThread) -> None:
    c = clip("s12_pause_shopping.wav")  # two sentences with a 2.5 s pause: two segments
    transcript = transcribe(c.path, local_engine_server.url())
    assert wer([c.reference], [transcript.text]) <= 0.25, transcript.text
    assert len(transcript.segments) >= 2
    ends = [s.end for s in transcript.segments]
    assert ends == sorted(ends) and 0 < transcript.segments[0].start < ends[-1] <= c.duration + 0.5
    assert abs(transcript.duration - c.duration) < 0.05
    assert str(transcript) == transcript.text


async def test_bytes_work_and_the_sync_call_works_inside_a_running_loop(local_engine_server: ServerThread) -> None:
    c = clip("s03_question_weather.wav")
    transcript = transcribe(c.path.read_bytes(), local_engine_server.url())  # a loop runs here, as in Jupyter
    assert wer([c.reference], [transcript.text]) <= 0.2, transcript.text
    again = await atranscribe(c.path, local_engine_server.url())
    assert wer([c.reference], [again.text]) <= 0.2


def test_with_a_key_audio_goes_in_batch_and_every_message_reaches_the_callback(keyed_server: ServerThread) -> None:
    c = clip("s11_long_paragraph.wav")
    seen: list[object] = []
    transcript = transcribe(c.path, keyed_server.url(), api_key=KEY, on_message=seen.append)
    sent = round(transcript.duration * 32000)
    assert abs(sent - c.duration * 32000) < 32000 * 0.05
    # The echo engine heard every byte, sent at once: without ?batch=true auth-on byte budgets refuse that.
    assert transcript.text == f"heard {sent} bytes"
    assert any(isinstance(m, FinalTranscript) for m in seen)


def test_a_wrong_key_and_a_bad_file_raise_before_any_audio(keyed_server: ServerThread) -> None:
    with pytest.raises(GatewayRefused):
        transcribe(clip("s01_command_lights.wav").path, keyed_server.url(), api_key="vx-nope")
    with pytest.raises(AudioFileError):
        transcribe(b"definitely not audio" * 100, keyed_server.url(), api_key=KEY)
    assert not keyed_server.gateway.sessions
