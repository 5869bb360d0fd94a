import io
import threading
import wave
from collections.abc import Callable

import numpy as np
import pytest

from tests.support import clip, encode_container
from voxrelay.audio.container import ContainerDecoder
from voxrelay.audio.pcm import (
    G711Decoder,
    Linear16Decoder,
    Resampler,
    alaw_to_float,
    decode_linear16,
    linear16_wav,
    mulaw_to_float,
    to_mono,
)


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


# G.711: the decoders against encoders written from the standard (ITU-T G.711), sample by sample.


def _mulaw_encode(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = min(max(magnitude.bit_length() - 8, 0), 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _alaw_encode(sample: int) -> int:
    sign = 0x80 if sample >= 0 else 0
    magnitude = min(abs(sample), 32767) >> 3
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5
        code = (exponent << 4) | ((magnitude >> (exponent)) & 0x0F)
    return (sign | code) ^ 0x55


@pytest.mark.parametrize(("law", "encode", "decode"), [("mulaw", _mulaw_encode, mulaw_to_float),
                                                       ("alaw", _alaw_encode, alaw_to_float)])
def test_g711_decodes_what_the_standard_encodes(law: str, encode: Callable[[int], int],
                                               decode: Callable[[bytes], np.ndarray]) -> None:
    t = np.arange(8000) / 8000
    signal = (0.6 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int32)
    encoded = bytes(encode(int(s)) for s in signal)
    decoded = decode(encoded)
    assert decoded.dtype == np.float32 and decoded.shape == (8000,)
    error = decoded - signal / 32768
    snr_db = 10 * np.log10(np.mean((signal / 32768) ** 2) / np.mean(error**2))
    assert snr_db > 30, f"{law}: {snr_db:.1f} dB"  # G.711 gives ~38 dB on a loud tone
    assert abs(float(decode(bytes([encode(0)]))[0])) < 0.001


def test_g711_decoder_resamples_8k_to_the_engine_rate() -> None:
    tone = (0.5 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000) * 32767).astype(np.int32)
    encoded = bytes(_mulaw_encode(int(s)) for s in tone)
    decoder = G711Decoder("mulaw", 8000, 16000)
    out = np.concatenate([decoder.decode(encoded[:3000]), decoder.decode(encoded[3000:]), decoder.flush()])
    assert abs(len(out) - 16000) <= 2
    assert abs(float(np.sqrt(np.mean(out**2))) - 0.5 / np.sqrt(2)) < 0.02
