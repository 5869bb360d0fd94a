"""Raw PCM handling: linear16 and G.711 (mu-law, A-law) bytes to float32 mono at the engine's rate.

Pure and synchronous: no threads, no asyncio. Containers (webm/ogg) are decoded by
`voxrelay.audio.container`, which hands its PCM to a `Resampler` from here.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import soxr

__all__ = [
    "G711Decoder",
    "Linear16Decoder",
    "Resampler",
    "alaw_to_float",
    "decode_linear16",
    "linear16_wav",
    "mulaw_to_float",
    "to_mono",
]


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average interleaved channels, `samples` shaped (frames, channels), to float32 mono."""
    if samples.ndim == 1 or samples.shape[1] == 1:
        return np.ascontiguousarray(samples.reshape(-1), dtype=np.float32)
    mono: np.ndarray = samples.mean(axis=1, dtype=np.float32)  # numpy's stubs type `mean` as Any
    return mono


class Resampler:
    """Streaming float32 mono resampler (soxr); keeps filter state between chunks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def process(self, mono: np.ndarray, last: bool = False) -> np.ndarray:
        """Resample the next chunk; `last=True` flushes the filter tail."""
        if self._stream is None:
            return mono
        return np.asarray(self._stream.resample_chunk(mono, last=last), dtype=np.float32)


class Linear16Decoder:
    """Little-endian int16 frames (any split, even mid-sample) to float32 mono at `out_rate`.

    Call `decode(chunk)` for each binary frame and `flush()` at end of stream.
    """

    def __init__(self, sample_rate: int, channels: int, out_rate: int) -> None:
        self.channels = channels
        self._frame_bytes = 2 * channels
        self._carry = b""
        self._resampler = Resampler(sample_rate, out_rate)

    def decode(self, chunk: bytes) -> np.ndarray:
        data = self._carry + chunk
        usable = len(data) - len(data) % self._frame_bytes
        self._carry = data[usable:]
        pcm = np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32768.0
        return self._resampler.process(to_mono(pcm.reshape(-1, self.channels)))

    def flush(self) -> np.ndarray:
        """Whatever the resampler still holds; a dangling half sample is dropped."""
        self._carry = b""
        return self._resampler.process(np.zeros(0, dtype=np.float32), last=True)


def decode_linear16(data: bytes, sample_rate: int, channels: int, rate: int) -> np.ndarray:
    """A whole body of raw little-endian int16 frames to mono at `rate` (a dangling half sample is dropped)."""
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


# G.711 (ITU-T G.711, as OpenAI's audio/pcmu and audio/pcma and Deepgram's mulaw/alaw): each byte is one
# sample. `audioop` is gone in Python 3.13, so the two 256-entry tables are computed once with numpy.


def _mulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    magnitude = (((u & 0x0F) << 3) + 0x84) << exponent
    value = np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84)
    return (value / 32768.0).astype(np.float32)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    value = np.where(a & 0x80, magnitude, -magnitude)
    return (value / 32768.0).astype(np.float32)


_MULAW = _mulaw_table()
_ALAW = _alaw_table()


def mulaw_to_float(data: bytes) -> np.ndarray:
    """G.711 mu-law bytes to float32 samples in [-1, 1]."""
    return _MULAW[np.frombuffer(data, dtype=np.uint8)]


def alaw_to_float(data: bytes) -> np.ndarray:
    """G.711 A-law bytes to float32 samples in [-1, 1]."""
    return _ALAW[np.frombuffer(data, dtype=np.uint8)]


class G711Decoder:
    """G.711 mono bytes (`law` "mulaw" or "alaw") to float32 mono at `out_rate`; same calls as `Linear16Decoder`."""

    def __init__(self, law: str, sample_rate: int, out_rate: int) -> None:
        self._table = _MULAW if law == "mulaw" else _ALAW
        self._resampler = Resampler(sample_rate, out_rate)

    def decode(self, chunk: bytes) -> np.ndarray:
        return self._resampler.process(self._table[np.frombuffer(chunk, dtype=np.uint8)])

    def flush(self) -> np.ndarray:
        return self._resampler.process(np.zeros(0, dtype=np.float32), last=True)
