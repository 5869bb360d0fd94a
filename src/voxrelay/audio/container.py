"""Incremental decoding of containerized audio (webm / ogg with Opus, as MediaRecorder makes).

A container arrives in arbitrary slices: only the first carries the header, and a
packet may span two WebSocket frames. PyAV's demuxer wants a file it can read, so
each `ContainerDecoder` runs the demuxer in its own thread over a pipe that blocks
until the next slice is fed. Decoded audio is downmixed, resampled with soxr and
handed to `on_pcm` from that thread.

Call order: `feed()` any number of times; `wait_idle()` to know every fed byte has
been decoded (before a finalize); `close()` at end of stream (flushes the decoder).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import av
import numpy as np

from voxrelay.audio.pcm import Resampler, to_mono

__all__ = ["AudioDecodeError", "ContainerDecoder"]

_FORMATS = {"webm": "matroska", "ogg": "ogg"}
# A real header is under a few KiB; a demuxer still searching for one after this much is fed garbage.
_MAX_HEADER_BYTES = 64 * 1024


class AudioDecodeError(Exception):
    """The bytes are not a decodable container of the declared kind."""


class _BlockingPipe(io.RawIOBase):
    """A read end that blocks until bytes are fed or the writer closes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self._reader_waiting = False
        self._reader_done = False

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        with self._cond:
            while not self._buffer and not self._eof:
                self._reader_waiting = True
                self._cond.notify_all()
                self._cond.wait()
            self._reader_waiting = False
            n = min(len(target), len(self._buffer))
            target[:n] = self._buffer[:n]
            del self._buffer[:n]
            return n

    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buffer += data
            self._cond.notify_all()

    def close_writer(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def reader_finished(self) -> None:
        with self._cond:
            self._reader_done = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until the reader has consumed everything and waits for more (or has ended)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._reader_done or (self._reader_waiting and not self._buffer), timeout
            )


class ContainerDecoder:
    """Decode one webm/ogg stream, fed in slices, to float32 mono PCM at `out_rate`."""

    def __init__(
        self,
        encoding: str,
        out_rate: int,
        on_pcm: Callable[[np.ndarray], None],
        on_error: Callable[[str], None],
    ) -> None:
        if encoding not in _FORMATS:
            raise ValueError(f"unsupported container {encoding!r}")
        self._format = _FORMATS[encoding]
        self._encoding = encoding
        self._out_rate = out_rate
        self._on_pcm = on_pcm
        self._on_error = on_error
        self._pipe = _BlockingPipe()
        self.error: str | None = None
        self._fed = 0
        self._opened = threading.Event()
        self._error_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"decode-{encoding}", daemon=True)
        self._thread.start()

    def feed(self, data: bytes) -> None:
        """Queue the next slice of the container; never blocks."""
        self._fed += len(data)
        if not self._opened.is_set() and self._fed > _MAX_HEADER_BYTES and self.error is None:
            self._fail(f"could not decode {self._encoding} audio: no {self._encoding} header in the first "
                       f"{_MAX_HEADER_BYTES // 1024} KiB")
            self._pipe.close_writer()
            return
        self._pipe.feed(data)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every fed byte has been demuxed and decoded; False on timeout."""
        return self._pipe.wait_idle(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """End of stream: decode what is left, flush, and stop the thread (blocks)."""
        self._pipe.close_writer()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._decode()
        except Exception as exc:  # PyAV raises many error types for garbage input
            self._fail(f"could not decode {self._encoding} audio: {exc}")
            # Keep consuming so feeders never block and wait_idle() still returns.
            while self._pipe.read(65536):
                pass
        finally:
            self._pipe.reader_finished()

    def _fail(self, message: str) -> None:
        with self._error_lock:
            if self.error is not None:
                return
            self.error = message
        self._on_error(message)

    def _decode(self) -> None:
        container = av.open(self._pipe, mode="r", format=self._format, options={"probesize": "4096"})
        self._opened.set()
        with container:
            if not container.streams.audio:
                raise AudioDecodeError("the container has no audio track")
            stream = container.streams.audio[0]
            resampler: Resampler | None = None
            for packet in container.demux(stream):
                for frame in packet.decode():
                    samples = frame.to_ndarray()
                    # Planar float comes as (channels, n); packed as (1, n * channels).
                    planar = frame.format.is_planar
                    samples = samples.T if planar else samples.reshape(-1, len(frame.layout.channels))
                    if samples.dtype != np.float32:
                        samples = _to_float(samples)
                    if resampler is None:
                        resampler = Resampler(frame.sample_rate, self._out_rate)
                    pcm = resampler.process(to_mono(samples))
                    if pcm.size:
                        self._on_pcm(pcm)
            if resampler is not None:
                tail = resampler.process(np.zeros(0, dtype=np.float32), last=True)
                if tail.size:
                    self._on_pcm(tail)


def _to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    if samples.dtype == np.int32:
        return samples.astype(np.float32) / 2147483648.0
    return samples.astype(np.float32)
