"""Whole uploaded files (wav, mp3, m4a, ogg, webm, flac, ... anything PyAV reads) to float32 mono PCM.

Blocking: the gateway runs `decode_file` in a worker thread, never on the event loop.
A file that is not audio, has no audio track, decodes to nothing, or stops well short of
the length its header declares (a truncated upload) raises `AudioDecodeError` with a
message for the client; one longer than `max_seconds` raises `AudioTooLong`, and decoding
stops there instead of decoding hours of audio first.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import av
import numpy as np

from voxrelay.audio.container import AudioDecodeError
from voxrelay.audio.pcm import Resampler, to_mono

__all__ = ["AudioDecodeError", "AudioTooLong", "DecodedFile", "decode_file"]

# A file that decodes to less than this share of its declared length was cut off (an upload
# interrupted, a partial copy); ffmpeg would otherwise return the part that is there, silently.
_TRUNCATED_SHARE = 0.9
_MIN_DECLARED_S = 0.5  # shorter declared lengths are too coarse to judge


class AudioTooLong(Exception):
    """The file is longer than the limit; `seconds` is how much was seen (at least the limit)."""

    def __init__(self, seconds: float, limit: float) -> None:
        super().__init__(f"the audio is longer than {limit:g} s")
        self.seconds = seconds
        self.limit = limit


@dataclass(frozen=True, slots=True)
class DecodedFile:
    """The file's audio as float32 mono at `sample_rate`, and what it was."""

    pcm: np.ndarray
    sample_rate: int
    container: str  # PyAV's format name, e.g. "wav", "mp3", "mov,mp4,m4a,3gp,3g2,mj2"

    @property
    def duration(self) -> float:
        return len(self.pcm) / self.sample_rate


def decode_file(data: bytes, sample_rate: int, max_seconds: float | None = None) -> DecodedFile:
    """Decode a whole file to mono float32 at `sample_rate` (soxr); raises `AudioDecodeError` / `AudioTooLong`."""
    if not data:
        raise AudioDecodeError("the file is empty")
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioDecodeError("the file has no audio track")
            stream = container.streams.audio[0]
            declared = _wav_declared_seconds(data) or _declared_seconds(container, stream)
            if max_seconds is not None and declared is not None and declared > max_seconds + 1:
                raise AudioTooLong(declared, max_seconds)
            pcm = _decode(container, stream, sample_rate, max_seconds)
            name = str(container.format.name)
    except (AudioDecodeError, AudioTooLong):
        raise
    except (av.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise AudioDecodeError(f"the file could not be decoded as audio ({_reason(exc)})") from None
    if not pcm.size:
        raise AudioDecodeError("the file holds no audio samples")
    decoded_s = len(pcm) / sample_rate
    if declared is not None and declared >= _MIN_DECLARED_S and decoded_s < declared * _TRUNCATED_SHARE:
        raise AudioDecodeError(
            f"the file is truncated: its header declares {declared:.1f} s of audio, only {decoded_s:.1f} s are there"
        )
    return DecodedFile(pcm, sample_rate, name)


def _decode(
    container: av.container.InputContainer, stream: av.AudioStream, rate: int, max_s: float | None
) -> np.ndarray:
    pieces: list[np.ndarray] = []
    resampler: Resampler | None = None
    total = 0
    limit = None if max_s is None else int(max_s * rate)
    for frame in container.decode(stream):
        samples = frame.to_ndarray()
        # Planar formats come as (channels, n); packed ones as (1, n * channels).
        samples = samples.T if frame.format.is_planar else samples.reshape(-1, len(frame.layout.channels))
        resampler = resampler or Resampler(frame.sample_rate, rate)
        pcm = resampler.process(to_mono(_to_float(samples)))
        pieces.append(pcm)
        total += len(pcm)
        if limit is not None and total > limit + rate:  # a second of slack for resampler and frame edges
            raise AudioTooLong(total / rate, float(max_s or 0))
    if resampler is not None:
        pieces.append(resampler.process(np.zeros(0, dtype=np.float32), last=True))
    pcm = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
    if limit is not None and len(pcm) > limit + rate:
        raise AudioTooLong(len(pcm) / rate, float(max_s or 0))
    return pcm


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The length the file's header states, if it states one (WAV, FLAC, MP4 do; raw streams may not)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    return None


def _wav_declared_seconds(data: bytes) -> float | None:
    """A WAV header's own length: ffmpeg clamps it to the bytes present, which hides a truncated upload."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset, byte_rate = 12, 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        if chunk == b"fmt " and offset + 16 <= len(data):
            byte_rate = struct.unpack("<I", data[offset + 16 : offset + 20])[0] if offset + 20 <= len(data) else 0
        elif chunk == b"data":
            # 0 and 0xFFFFFFFF mean "unknown" (a WAV written as a stream): nothing is declared.
            return size / byte_rate if byte_rate and 0 < size < 0xFFFFFFFF else None
        offset += 8 + size + (size & 1)
    return None


def _to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    if samples.dtype == np.int32:
        return samples.astype(np.float32) / 2147483648.0
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / 128.0
    return samples.astype(np.float32, copy=False)


def _reason(exc: Exception) -> str:
    text = str(exc).split(": '<", 1)[0]  # PyAV appends the (meaningless) file object's repr
    return text[:200] or type(exc).__name__
