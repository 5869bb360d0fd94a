"""A real gateway with the local engine on a loopback port, driven by a real WebSocket client."""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from typing import Any

import httpx
import numpy as np
import pytest
import soxr
import websockets
from faster_whisper import WhisperModel

from tests.support import (
    Clip,
    ServerThread,
    clip,
    encode_container,
    normalize,
    pink_noise,
    silence,
    wer,
)
from voxrelay.client import StreamResult, load_audio, stream_audio, to_linear16
from voxrelay.engines.local.model_files import resolve_model

# Clips over a range of speakers, lengths and content; about 60 s of audio in all.
WER_CLIPS = [
    "s03_question_weather.wav",
    "s07_names_message.wav",
    "s12_pause_shopping.wav",
    "jfk_inaugural.wav",
    "librivox_sas_0880.wav",
    "vctk_p226_001.wav",
    "ljspeech_LJ001-0004.wav",
    "pocketsphinx_goforward.wav",
    "speechbrain_example1.wav",
    "timit_LDC93S1.wav",
]
LINEAR16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}


def linear16_48k_stereo(c: Clip) -> bytes:
    up = soxr.resample(c.pcm(), 16000, 48000).astype(np.float32)
    left_right = np.stack([up, 0.8 * up], axis=1)  # not identical channels: a real downmix
    return (np.clip(left_right, -1, 1) * 32767).astype("<i2").tobytes()


async def stream_clip(server: ServerThread, c: Clip, fmt: str) -> StreamResult:
    if fmt == "linear16":
        return await stream_audio(server.url(), c.linear16(), configure={"audio_format": LINEAR16})
    if fmt == "linear16-48k-stereo":
        audio = linear16_48k_stereo(c)
        return await stream_audio(
            server.url(),
            audio,
            configure={"audio_format": {"encoding": "linear16", "sample_rate": 48000, "channels": 2}},
            bytes_per_second=48000 * 4,
            chunk_bytes=48000 * 4 // 20,
        )
    data = encode_container(c.pcm(), 16000, "webm")
    rate = max(1, int(len(data) / c.duration))
    return await stream_audio(
        server.url(), data, configure={"audio_format": {"encoding": "webm"}}, bytes_per_second=rate, chunk_bytes=rate // 4
    )


@pytest.fixture(scope="module")
def streamed(local_engine_server: ServerThread) -> dict[str, list[StreamResult]]:
    """Every WER clip streamed in real time in three formats (the formats run side by side)."""
    chosen = [clip(name) for name in WER_CLIPS]

    async def one_format(fmt: str) -> list[StreamResult]:
        return [await stream_clip(local_engine_server, c, fmt) for c in chosen]

    async def all_formats() -> dict[str, list[StreamResult]]:
        formats = ["linear16", "linear16-48k-stereo", "webm"]
        results = await asyncio.gather(*(one_format(f) for f in formats))
        return dict(zip(formats, results, strict=False))

    return asyncio.run(all_formats())


def decoded_webm(c: Clip) -> np.ndarray:
    """The clip as the server hears it in webm mode: Opus-encoded, then decoded."""
    with tempfile.NamedTemporaryFile(suffix=".webm") as f:
        f.write(encode_container(c.pcm(), 16000, "webm"))
        f.flush()
        return load_audio(f.name)


@pytest.fixture(scope="module")
def whole_file_wer() -> dict[str, float]:
    """faster-whisper's own whole-file transcription of the same audio with the same model.

    For webm the baseline hears the same Opus-coded audio, so the codec's loss is not
    charged to streaming.
    """
    model = WhisperModel(resolve_model("tiny.en"), device="cpu", compute_type="int8")
    chosen = [clip(name) for name in WER_CLIPS]

    def baseline(audio: list[np.ndarray]) -> float:
        hypotheses = []
        for pcm in audio:
            segments, _ = model.transcribe(pcm, language="en")
            hypotheses.append(" ".join(s.text.strip() for s in segments))
        return wer([c.reference for c in chosen], hypotheses)

    pcm = baseline([c.pcm() for c in chosen])
    return {"linear16": pcm, "linear16-48k-stereo": pcm, "webm": baseline([decoded_webm(c) for c in chosen])}


@pytest.mark.parametrize("fmt", ["linear16", "linear16-48k-stereo", "webm"])
def test_streaming_wer_close_to_whole_file(
    streamed: dict[str, list[StreamResult]], whole_file_wer: dict[str, float], fmt: str
) -> None:
    chosen = [clip(name) for name in WER_CLIPS]
    results = streamed[fmt]
    for result in results:
        assert result.of_type("stopped") and result.close_code == 1000, result.messages[-3:]
        assert not result.of_type("error")
    streaming = wer([c.reference for c in chosen], [r.transcript for r in results])
    print(f"{fmt}: streaming WER {streaming:.3f}, whole-file WER {whole_file_wer[fmt]:.3f}")
    assert streaming <= whole_file_wer[fmt] + 0.02


async def test_interims_come_before_each_utterance_final(local_engine_server: ServerThread) -> None:
    """One session at a time (no contention): every utterance over ~1 s shows interims before its final."""
    for name in ["s12_pause_shopping.wav", "jfk_inaugural.wav"]:
        result = await stream_audio(local_engine_server.url(), clip(name).linear16(), configure={"audio_format": LINEAR16})
        kinds = [m["type"] for m in result.messages]
        assert kinds[0] == "ready" and kinds[-1] == "stopped"
        utterance: list[dict[str, Any]] = []
        for message in result.messages:
            if message["type"] == "speech_started":
                utterance = []
            elif message["type"] == "final_transcript":
                if message["end"] - message["start"] > 1.0:
                    assert any(m["type"] == "interim_transcript" for m in utterance), (name, message)
                utterance = []
            else:
                utterance.append(message)


def test_interims_under_load(streamed: dict[str, list[StreamResult]]) -> None:
    """Three real-time sessions at once: interims still reach every clip over 3 s."""
    for c, result in zip([clip(n) for n in WER_CLIPS], streamed["linear16"], strict=False):
        if c.duration > 3:
            assert result.of_type("interim_transcript"), c.name


def test_finals_never_overlap(streamed: dict[str, list[StreamResult]]) -> None:
    for results in streamed.values():
        for name, result in zip(WER_CLIPS, results, strict=False):
            finals = result.of_type("final_transcript")
            assert finals
            for earlier, later in itertools.pairwise(finals):
                assert earlier["end"] <= later["start"] + 1e-3, finals
            for final in finals:
                assert final["start"] <= final["end"]
            # Text never repeats across finals: each word of the reference appears about once.
            words = normalize(result.transcript).split()
            assert len(words) <= len(normalize(clip(name).reference).split()) + 3


def test_speech_final_and_speech_started(streamed: dict[str, list[StreamResult]]) -> None:
    # s12 has a 2.5 s pause: two utterances, each ending with speech_final.
    result = streamed["linear16"][WER_CLIPS.index("s12_pause_shopping.wav")]
    finals = result.of_type("final_transcript")
    assert sum(f["speech_final"] for f in finals) >= 2
    assert len(result.of_type("speech_started")) >= 2


async def test_last_word_survives_an_immediate_stop(local_engine_server: ServerThread) -> None:
    c = clip("s01_command_lights.wav")
    pcm = c.pcm()
    pcm = pcm[: len(pcm) - int(0.5 * 16000)]  # drop the trailing silence: stop right after "lights"
    result = await stream_audio(local_engine_server.url(), to_linear16(pcm), configure={"audio_format": LINEAR16})
    assert result.of_type("stopped")
    assert normalize(result.transcript).split()[-1:] == ["lights"], result.transcript


async def test_four_concurrent_sessions_keep_their_own_words(local_engine_server: ServerThread) -> None:
    chosen = [clip(n) for n in ["s02_command_timer.wav", "s08_names_flight.wav", "s14_question_distance.wav", "vctk_p225_002.wav"]]
    results = await asyncio.gather(
        *(stream_audio(local_engine_server.url(), c.linear16(), configure={"audio_format": LINEAR16}) for c in chosen)
    )
    for c, result in zip(chosen, results, strict=False):
        # Each transcript matches its own clip (tiny.en mishears some names) and no other.
        scores = {other.name: wer([other.reference], [result.transcript]) for other in chosen}
        assert min(scores, key=scores.__getitem__) == c.name, scores
        assert scores[c.name] <= 0.45, (c.name, result.transcript)
    assert len({r.of_type("ready")[0]["session_id"] for r in results}) == 4


@pytest.mark.parametrize(
    "audio",
    [silence(4.0), pink_noise(4.0, level=0.05), pink_noise(4.0, level=0.2, seed=3)],
    ids=["silence", "pink-noise", "loud-pink-noise"],
)
async def test_no_text_from_silence_or_noise(local_engine_server: ServerThread, audio: np.ndarray) -> None:
    result = await stream_audio(local_engine_server.url(), to_linear16(audio), configure={"audio_format": LINEAR16}, speed=4)
    assert result.of_type("stopped")
    assert result.finals == [] and result.of_type("interim_transcript") == []


async def test_finalize_commits_and_the_session_goes_on(local_engine_server: ServerThread) -> None:
    first, second = clip("s01_command_lights.wav"), clip("s14_question_distance.wav")
    async with websockets.connect(local_engine_server.url()) as ws:
        await ws.send(json.dumps({"action": "configure", "audio_format": LINEAR16, "interim_results": False}))
        await send_frames(ws, first.linear16())
        await ws.send(json.dumps({"action": "finalize"}))
        finals = await collect_until(ws, lambda m: m["type"] == "final_transcript" and "light" in m["transcript"].lower())
        assert wer([first.reference], [" ".join(f["transcript"] for f in finals if f["type"] == "final_transcript")]) <= 0.2
        await send_frames(ws, second.linear16())
        await ws.send(json.dumps({"action": "stop"}))
        rest = await collect_until(ws, lambda m: m["type"] == "stopped")
        text = " ".join(m["transcript"] for m in rest if m["type"] == "final_transcript")
        assert wer([second.reference], [text]) <= 0.25
        assert not any(m["type"] == "interim_transcript" for m in finals + rest)
        await ws.wait_closed()
        assert ws.close_code == 1000


async def send_frames(ws: Any, audio: bytes, frame: int = 3200) -> None:
    for offset in range(0, len(audio), frame):
        await ws.send(audio[offset : offset + frame])


async def collect_until(ws: Any, done: Any) -> list[dict[str, Any]]:
    seen = []
    async with asyncio.timeout(60):
        async for raw in ws:
            message = json.loads(raw)
            seen.append(message)
            if done(message):
                return seen
    raise AssertionError(f"connection closed first: {seen}")


async def test_healthz(local_engine_server: ServerThread) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(local_engine_server.http("/healthz"))
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "engine": "local"}
        page = await client.get(local_engine_server.http("/"))
        assert page.status_code == 200 and "<html" in page.text.lower()
