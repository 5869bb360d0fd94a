"""Garbage audio: the decoders (linear16, webm, ogg, /v1/listen's sniffer) give clear errors and never crash.

10,000 hypothesis cases in all; the container cases mutate real webm/ogg streams (flipped,
cut and spliced bytes) as well as pure noise, since the interesting failures are deep inside
a stream that starts well. A real session then still transcribes, through the same server
that was just fed garbage.
"""

from __future__ import annotations

import asyncio

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import ServerThread, clip, encode_container, wer
from voxrelay.audio.container import ContainerDecoder
from voxrelay.audio.pcm import Linear16Decoder
from voxrelay.client import stream_audio
from voxrelay.protocol.deepgram_live import parse_params
from voxrelay.protocol.sniff import AudioFormatError, AudioSniffer

_SPEECH = clip("s01_command_lights.wav").pcm()[:16000]
_REAL = {fmt: encode_container(_SPEECH, 16000, fmt) for fmt in ("webm", "ogg")}


@st.composite
def mangled(draw: st.DrawFn, fmt: str) -> bytes:
    """A real container with random damage, or plain noise."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=3000))
    data = bytearray(_REAL[fmt])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "cut", "splice"]))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 400))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=200))
    return bytes(data[: draw(st.integers(1, len(data)))])


def decode_all(fmt: str, data: bytes, slice_size: int) -> tuple[int, list[str]]:
    samples = 0
    errors: list[str] = []

    def on_pcm(pcm: np.ndarray) -> None:
        nonlocal samples
        assert pcm.dtype == np.float32 and np.all(np.isfinite(pcm))
        samples += len(pcm)

    decoder = ContainerDecoder(fmt, 16000, on_pcm, errors.append)
    for offset in range(0, len(data), slice_size):
        decoder.feed(data[offset : offset + slice_size])
    decoder.close(timeout=10)
    return samples, errors


@settings(max_examples=2_500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=mangled("webm"), slice_size=st.integers(1, 4096))
def test_webm_garbage_decodes_or_fails_clearly(data: bytes, slice_size: int) -> None:
    samples, errors = decode_all("webm", data, slice_size)
    assert len(errors) <= 1
    assert all(e.startswith("could not decode webm audio") for e in errors)
    assert samples <= len(_SPEECH) + 16000  # never invents audio


@settings(max_examples=2_500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=mangled("ogg"), slice_size=st.integers(1, 4096))
def test_ogg_garbage_decodes_or_fails_clearly(data: bytes, slice_size: int) -> None:
    samples, errors = decode_all("ogg", data, slice_size)
    assert len(errors) <= 1
    assert all(e.startswith("could not decode ogg audio") for e in errors)
    assert samples <= len(_SPEECH) + 16000


@settings(max_examples=2_500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    chunks=st.lists(st.binary(max_size=999), max_size=12),
    rate=st.integers(8000, 48000),
    channels=st.integers(1, 2),
)
def test_linear16_takes_any_bytes(chunks: list[bytes], rate: int, channels: int) -> None:
    decoder = Linear16Decoder(rate, channels, 16000)
    total = sum(len(decoder.decode(chunk)) for chunk in chunks) + len(decoder.flush())
    frames = sum(map(len, chunks)) // (2 * channels)
    assert abs(total - frames * 16000 / rate) <= 64  # the resampler's edges, nothing more


_WAV_HEAD = (
    b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data"
)


@settings(max_examples=2_500, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    head=st.sampled_from([b"", _WAV_HEAD, b"OggS", b"\x1a\x45\xdf\xa3"]),
    chunks=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    flips=st.lists(st.tuples(st.integers(0, 47), st.integers(1, 255)), max_size=4),
)
def test_listen_sniffer_accepts_or_refuses_any_bytes(
    head: bytes, chunks: list[bytes], flips: list[tuple[int, int]]
) -> None:
    """/v1/listen without an encoding: whatever the first bytes, a format or a clear refusal."""
    data = bytearray(head + b"".join(chunks))
    for at, mask in flips:
        if at < len(data):
            data[at] ^= mask
    sniffer = AudioSniffer(parse_params([]))
    try:
        for offset in range(0, len(data), 37):
            found = sniffer.feed(bytes(data[offset : offset + 37]))
            if found is not None:
                assert found.audio_format.encoding in ("linear16", "webm", "ogg")
                return
    except AudioFormatError as exc:
        assert len(str(exc)) > 10


def test_a_session_after_garbage_sessions_still_works(local_engine_server: ServerThread) -> None:
    async def garbage(fmt: str, data: bytes) -> list[str]:
        result = await stream_audio(
            local_engine_server.url(), data, configure={"audio_format": {"encoding": fmt}}, speed=0, chunk_bytes=700
        )
        return [m["code"] for m in result.of_type("error")]

    async def scenario() -> tuple[list[list[str]], str]:
        c = clip("s14_question_distance.wav")
        good = asyncio.create_task(stream_audio(local_engine_server.url(), c.linear16()))
        bad = await asyncio.gather(
            garbage("webm", bytes(range(256)) * 300),
            garbage("ogg", _REAL["ogg"][:200] + bytes(5000)),
            garbage("webm", _REAL["webm"][:300] + b"\xff" * 70000),
        )
        return bad, (await good).transcript

    bad, text = asyncio.run(scenario())
    assert all(codes == ["unsupported_audio"] for codes in bad), bad
    assert wer([clip("s14_question_distance.wav").reference], [text]) <= 0.25
