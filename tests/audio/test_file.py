"""Whole uploaded files: decoding any container to PCM, and raw linear16 in a WAV header."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support import clip, encode_container
from voxrelay.audio.container import AudioDecodeError
from voxrelay.audio.file import decode_file


@pytest.mark.parametrize("fmt", ["wav", "webm", "ogg"])
def test_a_file_decodes_to_mono_at_the_asked_rate(fmt: str) -> None:
    c = clip("s01_command_lights.wav")
    reference = c.pcm(16000)
    data = c.path.read_bytes() if fmt == "wav" else encode_container(reference, 16000, fmt)
    pcm = decode_file(data, 16000)
    assert pcm.dtype == np.float32 and pcm.ndim == 1
    assert len(pcm) / 16000 == pytest.approx(c.duration, abs=0.03)  # Opus pads a few ms
    at_8k = decode_file(data, 8000)
    assert len(at_8k) == pytest.approx(len(pcm) / 2, abs=80)
    if fmt == "wav":
        assert np.allclose(pcm, reference, atol=1e-4)  # lossless: the same samples


def test_garbage_and_empty_files_are_refused() -> None:
    with pytest.raises(AudioDecodeError):
        decode_file(b"definitely not audio " * 100, 16000)
    with pytest.raises(AudioDecodeError):
        decode_file(b"", 16000)


def test_a_truncated_file_yields_the_audio_before_the_cut() -> None:
    c = clip("s01_command_lights.wav")
    data = encode_container(c.pcm(16000), 16000, "webm")  # (a cut ogg fails to open: PyAV probes its end)
    pcm = decode_file(data[: len(data) // 2], 16000)
    assert 0.3 * c.duration < len(pcm) / 16000 < 0.7 * c.duration
