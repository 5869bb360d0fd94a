"""`/v1/realtime?intent=transcription` driven by the real `openai` SDK on corpus speech, with the local engine.

Every server event is validated strictly by the SDK's own types (its normal parsing accepts almost anything).
Transcripts are judged by WER against the references and against whole-file faster-whisper, never by exact text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import soxr
import websockets
from openai import AsyncOpenAI
from openai._models import validate_type
from openai.types.realtime import RealtimeServerEvent

from tests.support import Clip, ServerThread, clip, silence, wer
from voxrelay.client import to_linear16
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.settings import Settings
from voxrelay.testing.fake_deepgram import FakeDeepgram, Script

VAD_CLIPS = ["s12_pause_shopping.wav", "s13_pause_letter.wav", "s03_question_weather.wav"]
COMPLETED = "conversation.item.input_audio_transcription.completed"
DELTA = "conversation.item.input_audio_transcription.delta"


def sdk(server: ServerThread, api_key: str = "sk-any") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=api_key, base_url=f"http://127.0.0.1:{server.port}/v1", max_retries=0)


def pcm24k(c: Clip, tail_s: float = 1.5) -> bytes:
    """The clip as OpenAI's audio/pcm: 24 kHz 16-bit mono, resampled from 16 kHz with soxr."""
    audio = np.concatenate([c.pcm(), silence(tail_s)])
    return to_linear16(soxr.resample(audio, 16000, 24000).astype(np.float32))


def mulaw8k(c: Clip) -> bytes:
    """The clip as audio/pcmu: 8 kHz G.711 mu-law (encoded here from the standard's formula)."""
    audio = soxr.resample(np.concatenate([c.pcm(), silence(1.0)]), 16000, 8000)
    x = np.clip(audio, -1, 1) * 32767
    magnitude = np.minimum(np.abs(x).astype(np.int32), 32635) + 0x84
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    sign = np.where(x < 0, 0x80, 0)
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


@dataclass
class Run:
    """What one Realtime session saw: every event (strictly validated), with arrival times."""

    events: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def add(self, event: dict[str, Any]) -> None:
        strict(event)
        self.events.append(event)
        self.times.append(time.perf_counter())
        self.changed.set()

    async def wait(self, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Until `condition()` holds, re-checked on each event the reader adds."""
        async with asyncio.timeout(timeout):
            while True:
                self.changed.clear()
                if condition():
                    return
                await self.changed.wait()

    @property
    def transcript(self) -> str:
        return " ".join(e["transcript"] for e in self.of(COMPLETED) if e["transcript"])


def strict(event: dict[str, Any]) -> None:
    parsed: Any = validate_type(type_=RealtimeServerEvent, value=event)  # type: ignore[arg-type]
    if event["type"] in ("session.created", "session.updated"):
        assert type(parsed.session).__name__ == "RealtimeTranscriptionSessionCreateRequest", event


async def until_event(conn: Any, run: Run, done: Callable[[dict[str, Any]], bool]) -> None:
    """Read (and strictly validate) events until `done(event)`."""
    async with asyncio.timeout(60):
        while True:
            run.add(json.loads(await conn.recv_bytes()))
            if done(run.events[-1]):
                return


async def read_forever(conn: Any, run: Run) -> None:
    while True:
        run.add(json.loads(await conn.recv_bytes()))


async def session(
    server: ServerThread, audio: bytes, audio_input: dict[str, Any], *, bytes_per_s: int, speed: float = 4.0,
    chunk_s: float = 0.1,
) -> Run:
    """Stream `audio` at `speed` x real time, then commit and read until that commit is answered.

    Which `committed` answers the final commit: a no-op `session.update` follows it; the session handles
    events in order and ends no VAD turn while a commit waits for the engine, so the last `committed`
    before that `session.updated` is the commit's (unless the commit was refused as empty).
    """
    run = Run()
    async with sdk(server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        reader = asyncio.create_task(read_forever(conn, run))
        try:
            await conn.send({"type": "session.update",
                             "session": {"type": "transcription", "audio": {"input": audio_input}}})
            await run.wait(lambda: bool(run.of("session.updated")))
            chunk = int(bytes_per_s * chunk_s)
            for i in range(0, len(audio), chunk):
                data = base64.b64encode(audio[i : i + chunk]).decode()
                await conn.send({"type": "input_audio_buffer.append", "audio": data})
                await asyncio.sleep(chunk_s / speed)  # pacing, as a microphone would
            await conn.send({"type": "input_audio_buffer.commit", "event_id": "end"})
            await conn.send({"type": "session.update", "session": {"type": "transcription"}})
            await run.wait(lambda: len(run.of("session.updated")) == 2)
            marker = run.events.index(run.of("session.updated")[1])
            refused = any(e["type"] == "error" and e["error"]["event_id"] == "end" for e in run.events[:marker])
            if not refused:
                ours = [e for e in run.events[:marker] if e["type"] == "input_audio_buffer.committed"][-1]["item_id"]
                await run.wait(lambda: any(e["item_id"] == ours for e in run.of(COMPLETED)))
        finally:
            reader.cancel()
    assert run.events[0]["type"] == "session.created"
    return run


def check_items(run: Run, *, vad: bool) -> None:
    """One item per turn, its events in OpenAI's order and with one item_id, each commit naming the previous."""
    previous = None
    for committed in run.of("input_audio_buffer.committed"):
        item = committed["item_id"]
        assert committed["previous_item_id"] == previous
        previous = item
        kinds = [e["type"] for e in run.events if e.get("item_id") == item]
        assert kinds.count(COMPLETED) == 1 and kinds[-1] == COMPLETED, kinds
        if vad and "input_audio_buffer.speech_started" in kinds:
            order = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped",
                     "input_audio_buffer.committed", COMPLETED]
            assert [k for k in kinds if k != DELTA] == order, kinds
        deltas = "".join(e["delta"] for e in run.events if e["type"] == DELTA and e["item_id"] == item)
        completed = next(e for e in run.of(COMPLETED) if e["item_id"] == item)
        assert completed["usage"]["type"] == "duration" and completed["usage"]["seconds"] >= 0
        if deltas == completed["transcript"]:
            continue
        # Deltas only append: if an interim was rewritten, the deltas stop where it diverged.
        assert completed["transcript"] and deltas != completed["transcript"]


@pytest.fixture(scope="module")
def whole_file() -> dict[str, str]:
    """faster-whisper's own whole-file transcription of the same clips with the same model."""
    from faster_whisper import WhisperModel

    from voxrelay.engines.local.model_files import resolve_model

    model = WhisperModel(resolve_model("tiny.en"), device="cpu", compute_type="int8")
    out = {}
    for name in VAD_CLIPS:
        segments, _ = model.transcribe(clip(name).pcm(), language="en")
        out[name] = " ".join(s.text.strip() for s in segments)
    return out


@pytest.fixture(scope="module")
def vad_runs(local_engine_server: ServerThread) -> dict[str, Run]:
    turn = {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
    audio_input = {"format": {"type": "audio/pcm", "rate": 24000}, "transcription": {"model": "whisper-1",
                                                                                      "language": "en"},
                   "turn_detection": turn}

    async def all_clips() -> dict[str, Run]:
        return {name: await session(local_engine_server, pcm24k(clip(name)), audio_input, bytes_per_s=48000)
                for name in VAD_CLIPS}

    return asyncio.run(all_clips())


def test_server_vad_turns_are_items_and_the_text_is_as_good_as_whole_file(
    vad_runs: dict[str, Run], whole_file: dict[str, str]
) -> None:
    refs = [clip(name).reference for name in VAD_CLIPS]
    realtime = wer(refs, [vad_runs[name].transcript for name in VAD_CLIPS])
    baseline = wer(refs, [whole_file[name] for name in VAD_CLIPS])
    print(f"realtime server_vad WER {realtime:.3f}, whole-file {baseline:.3f}")
    assert realtime <= 0.15 and realtime <= baseline + 0.05, {n: r.transcript for n, r in vad_runs.items()}
    for name, run in vad_runs.items():
        check_items(run, vad=True)
        assert all(e["error"]["code"] == "input_audio_buffer_commit_empty" for e in run.of("error")), name
        started = run.of("input_audio_buffer.speech_started")
        assert len(started) == len(run.of("input_audio_buffer.speech_stopped")) >= 1, name
    # The paused clips are two turns at least: VAD ends a turn at a pause, not only at the end.
    assert len(vad_runs["s12_pause_shopping.wav"].of("input_audio_buffer.speech_stopped")) >= 2
    assert any(run.of(DELTA) for run in vad_runs.values()), "deltas arrive while a turn is spoken"


def test_deltas_arrive_before_the_turn_ends(vad_runs: dict[str, Run]) -> None:
    run = vad_runs["s13_pause_letter.wav"]
    first_stop = run.events.index(run.of("input_audio_buffer.speech_stopped")[0])
    first_item = run.of("input_audio_buffer.speech_stopped")[0]["item_id"]
    assert any(e["type"] == DELTA and e["item_id"] == first_item for e in run.events[:first_stop])


async def test_manual_commit_completes_the_turn(local_engine_server: ServerThread) -> None:
    c = clip("s03_question_weather.wav")
    audio_input = {"format": {"type": "audio/pcm", "rate": 24000}, "turn_detection": None}
    run = await session(local_engine_server, pcm24k(c, tail_s=0.3), audio_input, bytes_per_s=48000)
    assert not run.of("input_audio_buffer.speech_started")  # no VAD events without turn detection
    [completed] = run.of(COMPLETED)  # one commit, one item
    check_items(run, vad=False)
    assert wer([c.reference], [completed["transcript"]]) <= 0.15, completed["transcript"]


async def test_mulaw_at_8k_is_transcribed(local_engine_server: ServerThread) -> None:
    c = clip("s03_question_weather.wav")
    run = await session(local_engine_server, mulaw8k(c), {"format": {"type": "audio/pcmu"}, "turn_detection": None},
                        bytes_per_s=8000)
    assert run.of("session.updated")[0]["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert wer([c.reference], [run.transcript]) <= 0.25, run.transcript


async def test_bad_events_get_errors_and_the_session_survives(local_engine_server: ServerThread) -> None:
    run = Run()
    async with sdk(local_engine_server).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await until_event(conn, run, lambda e: e["type"] == "session.created")
        bad: list[dict[str, Any]] = [
            {"type": "response.create", "event_id": "b1"},
            {"type": "input_audio_buffer.append", "audio": "not base64!", "event_id": "b2"},
            {"type": "session.update", "event_id": "b3",
             "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}},
            {"type": "input_audio_buffer.commit", "event_id": "b4"},
        ]
        for event in bad:
            await conn.send(event)
        await until_event(conn, run, lambda e: e.get("error", {}).get("event_id") == "b4")
        errors = {e["error"]["event_id"]: e["error"] for e in run.of("error")}
        assert set(errors) == {"b1", "b2", "b3", "b4"}
        assert errors["b1"]["param"] == "type" and errors["b2"]["param"] == "audio"
        assert errors["b3"]["param"] == "session.audio.input.format.rate"
        assert errors["b4"]["code"] == "input_audio_buffer_commit_empty"
        # Still alive: an update and a turn work.
        await conn.send({"type": "session.update", "session": {"type": "transcription",
                                                                 "audio": {"input": {"turn_detection": None}}}})
        await until_event(conn, run, lambda e: e["type"] == "session.updated")
        audio = pcm24k(clip("s03_question_weather.wav"), tail_s=0.2)
        for i in range(0, len(audio), 9600):  # 200 ms an append (a whole clip is past the frame limit)
            await conn.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[i : i + 9600]).decode()})
        await conn.send({"type": "input_audio_buffer.commit"})
        await until_event(conn, run, lambda e: e["type"] == COMPLETED)
    assert wer([clip("s03_question_weather.wav").reference], [run.transcript]) <= 0.15


async def test_only_transcription_intent_is_served(local_engine_server: ServerThread) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with sdk(local_engine_server).realtime.connect():
            pass
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body)["error"]["code"] == "invalid_intent"
    # A model in the query (beta clients always send one) is accepted and ignored.
    async with sdk(local_engine_server).realtime.connect(
        model="gpt-4o-transcribe", extra_query={"intent": "transcription"}
    ) as conn:
        run = Run()
        await until_event(conn, run, lambda e: e["type"] == "session.created")


@pytest.mark.parametrize("silent_finalize", [False, True], ids=["finalize-answered", "finalize-unanswered"])
async def test_the_deepgram_engine_takes_mulaw_raw(silent_finalize: bool) -> None:
    """/v1/realtime in front of the deepgram engine (the project's fake Deepgram): G.711 goes upstream as is, and a
    commit completes even when Deepgram does not answer the Finalize (it does not when nothing is buffered)."""
    key = "upstream-only-key"
    async with FakeDeepgram(api_key=key, default=Script(final_every_s=0.5, silent_finalize=silent_finalize)) as fake:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DEEPGRAM_API_KEY", key)
            engine = DeepgramEngine(DeepgramSettings(url=fake.url))
        proxy = ServerThread(Settings(port=0), engine).start()
        try:
            audio = bytes([0xFF]) * 8000  # 1 s of mu-law silence: the fake says its script whatever it hears
            run = await session(proxy, audio, {"format": {"type": "audio/pcmu"}, "turn_detection": None},
                                bytes_per_s=8000, speed=20)
        finally:
            await asyncio.to_thread(proxy.stop)
    [connection] = fake.connections
    assert connection.param("encoding") == "mulaw" and connection.param("sample_rate") == "8000"
    assert connection.finalizes >= 1
    assert run.transcript.startswith(Script().transcript)
    check_items(run, vad=False)
