"""client/audio.py: files and bytes decoded to 16 kHz mono; anything else is one clear AudioFileError."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support import clip, encode_file
from voxrelay.client import AudioFileError, load_audio, to_linear16

ROOT = Path(__file__).parents[2]


def test_a_wav_path_and_its_bytes_decode_alike() -> None:
    c = clip("s01_command_lights.wav")
    from_path = load_audio(c.path)
    from_bytes = load_audio(c.path.read_bytes())
    assert abs(len(from_path) / 16000 - c.duration) < 0.05
    np.testing.assert_array_equal(from_path, from_bytes)


def test_an_encoded_recording_is_resampled_to_16_khz() -> None:
    pcm = clip("s01_command_lights.wav").pcm()
    ogg = encode_file(pcm, "ogg")  # Opus at 48 kHz inside
    decoded = load_audio(ogg)
    assert abs(len(decoded) - len(pcm)) < 16000 * 0.1
    assert float(np.sqrt(np.mean(decoded**2))) > 0.01  # speech, not silence


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (ROOT / "README.md", "not audio voxrelay can read"),
        (ROOT / "no-such-file.wav", "no such file"),
        (ROOT / "src", "a directory"),
        (b"this is not audio at all" * 50, "not audio voxrelay can read"),
    ],
)
def test_what_is_not_audio_raises_one_clear_error(source: Path | bytes, reason: str) -> None:
    with pytest.raises(AudioFileError) as caught:
        load_audio(source)
    assert reason in str(caught.value)
    assert caught.value.code == "unsupported_audio"
    assert "\n" not in str(caught.value)


def test_linear16_clips_and_scales() -> None:
    assert to_linear16(np.array([0.0, 1.0, -1.0, 2.0], dtype=np.float32)) == np.array(
        [0, 32767, -32767, 32767], dtype="<i2"
    ).tobytes()
