"""Whole uploaded files: decode to float32 mono PCM, or wrap raw linear16 in a WAV header.

Blocking (PyAV decodes in the calling thread): the gateway calls these through
`asyncio.to_thread`. Streams use `container.ContainerDecoder` instead, which is fed slices.
"""

from __future__ import annotations

import io
import wave

import av
import numpy as np

from voxrelay.audio.container import AudioDecodeError, _to_float
from voxrelay.audio.pcm import Linear16Decoder, Resampler, to_mono

__all__ = ["decode_file", "decode_linear16", "linear16_wav"]


def decode_file(data: bytes, rate: int) -> np.ndarray:
    """Decode a whole file in any container PyAV reads (wav, mp3, m4a, ogg, webm, flac) to mono at `rate`.

    Raises:
        AudioDecodeError: not audio, truncated before any audio, or no audio track.
    """
    pieces: list[np.ndarray] = []
    resampler: Resampler | None = None
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise AudioDecodeError("the file has no audio track")
            for frame in container.decode(audio=0):
                samples = frame.to_ndarray()
                samples = samples.T if frame.format.is_planar else samples.reshape(-1, len(frame.layout.channels))
                if samples.dtype != np.float32:
                    samples = _to_float(samples)
                resampler = resampler or Resampler(frame.sample_rate, rate)
                pieces.append(resampler.process(to_mono(samples)))
    except (av.FFmpegError, OSError, ValueError) as exc:
        # A truncated file still yields the audio before the cut (as ffmpeg does); garbage yields none.
        if not pieces:
            raise AudioDecodeError(f"could not decode the file: {exc}") from None
    if resampler is None:
        raise AudioDecodeError("the file holds no decodable audio")
    pieces.append(resampler.process(np.zeros(0, dtype=np.float32), last=True))
    return np.concatenate(pieces)


def decode_linear16(data: bytes, sample_rate: int, channels: int, rate: int) -> np.ndarray:
    """Raw little-endian int16 frames to mono at `rate` (a dangling half sample is dropped)."""
    decoder = Linear16Decoder(sample_rate, channels, rate)
    return np.concatenate([decoder.decode(data), decoder.flush()])


def linear16_wav(data: bytes, sample_rate: int, channels: int) -> bytes:
    """Raw linear16 in a WAV header, for engines that take files and read their format from the header."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(data[: len(data) - len(data) % (2 * channels)])
    return out.getvalue()
