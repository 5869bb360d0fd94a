"""Whole uploaded files to PCM: every container clients send, and the files that must be refused."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import FILE_FORMATS, clip, encode_file
from voxrelay.audio import file as file_module
from voxrelay.audio.file import AudioDecodeError, AudioTooLong, decode_file


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return clip("jfk_inaugural.wav").pcm()


@pytest.mark.parametrize("kind", list(FILE_FORMATS))
def test_every_container_decodes_to_the_same_speech(kind: str, speech: np.ndarray) -> None:
    decoded = decode_file(encode_file(speech, kind), 16000)
    assert decoded.sample_rate == 16000 and decoded.pcm.dtype == np.float32 and decoded.pcm.ndim == 1
    # Lossy codecs add priming samples and pad the last frame: lengths agree within 0.1 s.
    assert abs(decoded.duration - len(speech) / 16000) < 0.1, decoded.duration
    # And it is the same signal: the loudness envelope per 100 ms follows the original's.
    n = min(len(speech), len(decoded.pcm)) // 1600 * 1600
    shift = _best_shift(speech, decoded.pcm)
    a = np.sqrt(np.mean(speech[:n].reshape(-1, 1600) ** 2, axis=1))
    b = np.sqrt(np.mean(np.roll(decoded.pcm, -shift)[:n].reshape(-1, 1600) ** 2, axis=1))
    assert np.corrcoef(a, b)[0, 1] > 0.95


def _best_shift(reference: np.ndarray, decoded: np.ndarray) -> int:
    """The codec delay in samples (AAC and Opus shift the signal by up to ~50 ms)."""
    window = reference[16000:32000]
    scores = [float(np.dot(window, decoded[16000 + s : 32000 + s])) for s in range(0, 1600, 4)]
    return 4 * int(np.argmax(scores))


def test_other_rates_and_stereo_are_resampled_to_mono(speech: np.ndarray) -> None:
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=44100)
        stream.layout = "stereo"
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=44100)
        frame = av.AudioFrame.from_ndarray((speech * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        for resampled in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    decoded = decode_file(buf.getvalue(), 16000)
    assert abs(decoded.duration - 11.0) < 0.05


@pytest.mark.parametrize("kind", ["wav", "mp3", "flac", "m4a", "webm"])
def test_a_truncated_file_is_refused(kind: str, speech: np.ndarray) -> None:
    data = encode_file(speech, kind)
    with pytest.raises(AudioDecodeError, match=r"truncated|could not be decoded"):
        decode_file(data[: len(data) // 2], 16000)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is a text file, not audio\n" * 40, "could not be decoded"),
        (bytes(range(256)) * 64, "could not be decoded"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "could not be decoded"),
    ],
)
def test_what_is_not_audio_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(AudioDecodeError, match=message):
        decode_file(data, 16000)


def test_a_file_over_the_duration_limit_stops_early(speech: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode_file(speech, "ogg")
    with pytest.raises(AudioTooLong) as raised:
        decode_file(encode_file(speech, "wav"), 16000, max_seconds=5)  # the header says 11 s: refused up front
    assert raised.value.limit == 5 and raised.value.seconds == pytest.approx(11.0)
    # A file that declares no length is stopped by the decode loop, a second past the limit.
    monkeypatch.setattr(file_module, "_declared_seconds", lambda container, stream: None)
    with pytest.raises(AudioTooLong) as raised:
        decode_file(data, 16000, max_seconds=5)
    assert 6 <= raised.value.seconds < 7
    assert decode_file(data, 16000, max_seconds=11).duration == pytest.approx(11.0, abs=0.1)
