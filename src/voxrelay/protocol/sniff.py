"""Finding out what `/v1/listen` binary frames contain when the request did not say. Sans-I/O.

When the request names no encoding, `AudioSniffer` looks at the first bytes: webm and
ogg go to the container decoder, WAV is unwrapped to linear16.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pydantic import ValidationError

from voxrelay.protocol.deepgram_params import ListenParams
from voxrelay.protocol.messages import AudioFormat

__all__ = ["AudioFormatError", "AudioSniffer", "SniffedFormat"]

_CONTAINER_ENCODINGS = {"opus", "ogg-opus"}

# Finding out what the binary frames contain, when the request did not say.


class AudioFormatError(Exception):
    """The first bytes are not audio voxrelay can decode with the request's parameters."""


@dataclass(frozen=True, slots=True)
class SniffedFormat:
    audio_format: AudioFormat
    payload: bytes  # the bytes to feed: everything so far (containers) or the PCM after a WAV header


_WAV_HEADER_LIMIT = 64 * 1024


class AudioSniffer:
    """Buffers the first bytes until the format is known.

    Call `feed(data)` with each binary frame until it returns a `SniffedFormat`
    (None means "need more bytes"). linear16 is known without looking. WAV is
    unwrapped to linear16 (the header gives rate and channels), so the
    decoders only ever see linear16, webm or ogg.

    Raises:
        AudioFormatError: from `feed`, when the bytes are nothing voxrelay can decode.
    """

    def __init__(self, params: ListenParams) -> None:
        self._params = params
        self._buffer = b""

    def feed(self, data: bytes) -> SniffedFormat | None:
        params = self._params
        if params.encoding == "linear16":
            assert params.sample_rate is not None
            return SniffedFormat(
                AudioFormat(encoding="linear16", sample_rate=params.sample_rate, channels=params.channels), data
            )
        self._buffer += data
        head = self._buffer
        if len(head) < 4:
            return None
        if head.startswith(b"OggS"):
            return SniffedFormat(AudioFormat(encoding="ogg"), head)
        if head.startswith(b"\x1a\x45\xdf\xa3"):
            return SniffedFormat(AudioFormat(encoding="webm"), head)
        if params.encoding is None and head.startswith(b"RIFF"):
            return self._wav(head)
        if params.encoding in _CONTAINER_ENCODINGS:
            raise AudioFormatError(
                f"encoding={params.encoding} expects Ogg (or WebM) Opus; the first bytes are neither"
            )
        raise AudioFormatError(
            "could not detect a container (webm, ogg or wav) in the first bytes; "
            "for raw PCM pass encoding=linear16 and sample_rate"
        )

    def _wav(self, head: bytes) -> SniffedFormat | None:
        if len(head) < 12:
            return None
        if head[8:12] != b"WAVE":
            raise AudioFormatError("a RIFF file that is not WAVE")
        offset = 12
        fmt: tuple[int, int, int, int] | None = None
        while True:
            if len(head) > _WAV_HEADER_LIMIT:
                raise AudioFormatError("no WAV data chunk in the first 64 KiB")
            if len(head) < offset + 8:
                return None
            chunk_id, size = head[offset : offset + 4], struct.unpack("<I", head[offset + 4 : offset + 8])[0]
            body = offset + 8
            if chunk_id == b"data":
                break
            if len(head) < body + size:
                return None
            if chunk_id == b"fmt ":
                if size < 16:
                    raise AudioFormatError("a WAV fmt chunk shorter than 16 bytes")
                tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", head[body : body + 16])
                if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format's first 2 bytes
                    tag = struct.unpack("<H", head[body + 24 : body + 26])[0]
                fmt = (tag, channels, rate, bits)
            offset = body + size + (size & 1)
        if fmt is None:
            raise AudioFormatError("a WAV file without a fmt chunk before its data")
        tag, channels, rate, bits = fmt
        if tag != 1 or bits != 16:
            raise AudioFormatError(f"WAV audio must be 16-bit PCM (got format {tag}, {bits} bits)")
        try:
            audio_format = AudioFormat(encoding="linear16", sample_rate=rate, channels=channels)
        except ValidationError:
            raise AudioFormatError(
                f"WAV audio at {rate} Hz with {channels} channels is outside 8-48 kHz, 1-2 channels"
            ) from None
        return SniffedFormat(audio_format, head[body:])
