"""Audio in: any file or bytes PyAV can read, decoded to float32 mono and resampled with soxr."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

from voxrelay.audio.pcm import Resampler, to_mono
from voxrelay.client.errors import AudioFileError

__all__ = ["load_audio", "to_linear16"]


def load_audio(source: str | Path | bytes, rate: int = 16000) -> np.ndarray:
    """Decode a file (path) or an encoded recording (bytes) to float32 mono at `rate`.

    Raises `AudioFileError` when it is not audio (PyAV's own exceptions never escape, so a
    caller shows one line, not a traceback).
    """
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    opened = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        return _decode(opened, rate, name)
    except AudioFileError:
        raise
    except FileNotFoundError:
        raise AudioFileError(name, "no such file") from None
    except IsADirectoryError:
        raise AudioFileError(name, "a directory") from None
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioFileError(name, f"not audio voxrelay can read ({_reason(exc)})") from None


def _decode(opened: str | io.BytesIO, rate: int, name: str) -> np.ndarray:
    pieces: list[np.ndarray] = []
    resampler: Resampler | None = None
    with av.open(opened) as container:
        if not container.streams.audio:
            raise AudioFileError(name, "no audio track in it")
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            samples = samples.T if frame.format.is_planar else samples.reshape(-1, len(frame.layout.channels))
            if samples.dtype == np.int16:
                samples = samples.astype(np.float32) / 32768.0
            elif samples.dtype == np.int32:
                samples = samples.astype(np.float32) / 2147483648.0
            resampler = resampler or Resampler(frame.sample_rate, rate)
            pieces.append(resampler.process(to_mono(samples.astype(np.float32, copy=False))))
    if resampler is not None:
        pieces.append(resampler.process(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)


def _reason(exc: Exception) -> str:
    # PyAV's messages end with the path and errno ("Invalid data found when processing input: 'x.md'").
    text = str(getattr(exc, "strerror", None) or exc).strip()
    return text.split(":")[0] if text else type(exc).__name__


def to_linear16(pcm: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] as little-endian int16, the `linear16` encoding."""
    return (pcm.clip(-1.0, 1.0) * 32767).astype("<i2").tobytes()
