"""Whole uploaded files: decode to float32 mono PCM.

Blocking (PyAV decodes in the calling thread): the gateway calls these through
`asyncio.to_thread`. Streams use `container.ContainerDecoder` instead, which is fed slices.
"""

from __future__ import annotations

import io

import av
import numpy as np

from voxrelay.audio.container import AudioDecodeError, _to_float
from voxrelay.audio.pcm import Resampler, to_mono

__all__ = ["decode_file"]


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
