import io
import threading
import wave

import numpy as np
import pytest

from tests.support import clip, encode_container
from voxrelay.audio.container import ContainerDecoder
from voxrelay.audio.pcm import Linear16Decoder, Resampler, decode_linear16, linear16_wav, to_mono


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_to_mono_averages_channels() -> None:
    stereo = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    assert np.allclose(to_mono(stereo), [0.5, 0.5])


def test_linear16_split_mid_sample_and_stereo_48k() -> None:
    pcm = tone(1.0, 48000)
    stereo = np.stack([pcm, pcm], axis=1)
    data = (stereo * 32767).astype("<i2").tobytes()
    decoder = Linear16Decoder(48000, 2, 16000)
    pieces = [decoder.decode(data[i : i + 333]) for i in range(0, len(data), 333)]
    out = np.concatenate([*pieces, decoder.flush()])
    assert abs(len(out) - 16000) <= 2
    expected = tone(1.0, 16000)
    # Same tone after resampling (compare the middle, away from filter edges).
    assert np.corrcoef(out[1000:15000], expected[1000:15000])[0, 1] > 0.99


def test_resampler_passthrough_at_same_rate() -> None:
    x = tone(0.1, 16000)
    assert Resampler(16000, 16000).process(x) is x


@pytest.mark.parametrize("fmt", ["webm", "ogg"])
def test_container_decoded_incrementally(fmt: str) -> None:
    speech = clip("s01_command_lights.wav").pcm()
    data = encode_container(speech, 16000, fmt)
    got: list[np.ndarray] = []
    errors: list[str] = []
    decoder = ContainerDecoder(fmt, 16000, got.append, errors.append)
    for i in range(0, len(data), 500):
        decoder.feed(data[i : i + 500])
    assert decoder.wait_idle(10)
    # Nearly everything is out before the end of stream (at most a packet or two held back).
    assert sum(map(len, got)) >= len(speech) - 0.1 * 16000
    decoder.close()
    out = np.concatenate(got)
    assert errors == []
    assert abs(len(out) - len(speech)) < 0.05 * 16000
    assert np.sqrt(np.mean(out**2)) > 0.01  # real audio, not silence


def test_garbage_container_reports_an_error_and_never_blocks() -> None:
    errors: list[str] = []
    reported = threading.Event()

    def on_error(message: str) -> None:
        errors.append(message)
        reported.set()

    decoder = ContainerDecoder("webm", 16000, lambda pcm: None, on_error)
    decoder.feed(b"\x00garbage" * 2000)
    assert reported.wait(10)
    decoder.feed(b"more garbage")  # still accepted without blocking
    assert decoder.wait_idle(10)
    decoder.close()
    assert "could not decode webm audio" in errors[0]


def test_linear16_round_trips_through_a_wav_header_and_downmixes() -> None:
    left = (np.arange(1600) % 200 - 100).astype("<i2")
    stereo = np.stack([left, -left], axis=1).reshape(-1).astype("<i2").tobytes()
    wav_bytes = linear16_wav(stereo + b"\x01", 16000, 2)  # a dangling byte is dropped
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert (wav.getnchannels(), wav.getframerate(), wav.getnframes()) == (2, 16000, 1600)
        assert wav.readframes(1600) == stereo
    mono = decode_linear16(stereo, 16000, 2, 16000)
    assert len(mono) == 1600 and np.allclose(mono, 0.0)  # L + R cancel
    assert len(decode_linear16(left.tobytes(), 16000, 1, 8000)) == pytest.approx(800, abs=2)
