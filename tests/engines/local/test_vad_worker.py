"""VadWorker with the real Silero model on corpus audio: the same scores as inline calls, off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from tests.support import clip
from voxrelay.engines.local.vad import SileroVad, VadState
from voxrelay.engines.local.vad_worker import VadSession, VadWorker, VadWorkerClosed

_WAIT_S = 30.0  # upper bound for a thread event; a healthy run takes milliseconds


class GatedVad(SileroVad):
    """The real model, but a call can be held at a gate, so a test can make work queue up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.threads: set[str] = set()

    def probabilities(self, state: VadState, audio: np.ndarray, flush: bool = False) -> np.ndarray:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(_WAIT_S)
        return super().probabilities(state, audio, flush)

    def close_gate(self) -> None:
        """Hold the next call at the gate (call before queueing it, then await `held`)."""
        self.entered.clear()
        self.gate.clear()

    async def held(self) -> None:
        """Returns once the worker is in a call, held at the gate."""
        assert await asyncio.to_thread(self.entered.wait, _WAIT_S)


@pytest.fixture(scope="module")
def vad() -> GatedVad:
    return GatedVad()


@pytest.fixture
def worker(vad: GatedVad) -> Iterator[VadWorker]:
    vad.gate.set()
    vad.entered.clear()
    worker = VadWorker(vad)
    yield worker
    vad.gate.set()
    worker.close()


def frames(name: str, size: int) -> list[np.ndarray]:
    pcm = clip(name).pcm()
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def inline(vad: SileroVad, chunks: list[np.ndarray]) -> list[np.ndarray]:
    """What LocalStream computed on the event loop before the worker: one call per frame, then a flush."""
    state = VadState()
    out = [vad.probabilities(state, chunk) for chunk in chunks]
    out.append(vad.probabilities(state, np.zeros(0, dtype=np.float32), flush=True))
    return out


def submit_all(session: VadSession, chunks: list[np.ndarray]) -> list[asyncio.Future[np.ndarray]]:
    return [session.score(chunk) for chunk in chunks] + [session.flush()]


async def test_scores_equal_inline_silero_on_real_audio(vad: GatedVad, worker: VadWorker) -> None:
    chunks = frames("jfk_inaugural.wav", 800)  # 50 ms frames, as the gateway feeds them
    expected = inline(vad, chunks)
    vad.threads.clear()
    got = await asyncio.gather(*submit_all(worker.open(), chunks))
    assert len(got) == len(expected) > 100
    for a, b in zip(got, expected, strict=True):
        assert np.array_equal(a, b)
    # Speech and pauses both show, so the comparison covers real decisions, not only silence.
    probs = np.concatenate(got)
    assert (probs > 0.8).mean() > 0.3 and (probs < 0.2).mean() > 0.05
    assert vad.threads == {"vad-worker"}


async def test_interleaved_sessions_keep_their_own_state_and_share_batches(vad: GatedVad, worker: VadWorker) -> None:
    names = [("s12_pause_shopping.wav", 800), ("ljspeech_LJ001-0001.wav", 512), ("vctk_p226_001.wav", 1000)]
    streams = [frames(name, size) for name, size in names]
    expected = [inline(vad, chunks) for chunks in streams]
    sessions = [worker.open() for _ in streams]
    vad.close_gate()
    first = sessions[0].score(streams[0][0])
    await vad.held()  # the worker holds frame 0 of stream 0; everything else queues behind it
    futures: list[list[asyncio.Future[np.ndarray]]] = [[first], [], []]
    longest = max(len(chunks) for chunks in streams)
    for i in range(longest):  # round robin, as live sessions would send
        for k, (session, chunks) in enumerate(zip(sessions, streams, strict=True)):
            if i < len(chunks) and (k, i) != (0, 0):
                futures[k].append(session.score(chunks[i]))
    for k, session in enumerate(sessions):
        futures[k].append(session.flush())
    assert worker.queued == sum(len(f) for f in futures) - 1
    vad.gate.set()
    for k in range(len(streams)):
        got = await asyncio.gather(*futures[k])
        assert len(got) == len(expected[k])
        assert all(np.array_equal(a, b) for a, b in zip(got, expected[k], strict=True)), names[k]
    assert worker.batches == 2  # the held frame, then everything queued by all three sessions at once


async def test_closing_a_session_drops_its_work_and_spares_the_others(vad: GatedVad, worker: VadWorker) -> None:
    chunks = frames("s01_command_lights.wav", 800)
    closing, staying = worker.open(), worker.open()
    vad.close_gate()
    in_hand = closing.score(chunks[0])
    await vad.held()
    dropped = [closing.score(c) for c in chunks[1:6]]
    kept = [staying.score(c) for c in chunks[:5]]
    closing.close()
    assert all(f.cancelled() for f in dropped)
    assert worker.queued == len(kept)
    assert closing.score(chunks[6]).cancelled()  # a closed session takes no more work
    vad.gate.set()
    got = await asyncio.gather(*kept)
    assert all(np.array_equal(a, b) for a, b in zip(got, inline(vad, chunks[:5])[:5], strict=True))
    assert in_hand.cancelled()  # the result of the frame in hand went nowhere
    assert worker.queued == 0


async def test_stop_fails_queued_work_and_ends_the_thread(vad: GatedVad) -> None:
    worker = VadWorker(vad)
    chunks = frames("s01_command_lights.wav", 800)
    session = worker.open()
    vad.close_gate()
    in_hand = session.score(chunks[0])
    await vad.held()
    queued = session.score(chunks[1])
    closing = asyncio.create_task(asyncio.to_thread(worker.close))
    with pytest.raises(VadWorkerClosed):
        await queued  # failed by close(), while the worker still holds frame 0
    vad.gate.set()
    await closing
    assert not worker.alive
    assert np.array_equal(await in_hand, inline(vad, chunks[:1])[0])
    with pytest.raises(VadWorkerClosed):
        await session.score(chunks[2])


async def test_a_bad_request_or_a_closed_loop_does_not_kill_the_worker(
    vad: GatedVad, worker: VadWorker, caplog: pytest.LogCaptureFixture
) -> None:
    chunks = frames("s01_command_lights.wav", 800)
    with pytest.raises(ValueError):
        await worker.open().score(np.zeros((2, 2), dtype=np.float32))  # not mono: the model call fails

    # A stream on another loop (in another thread) submits, then its loop closes before the result comes back.
    vad.close_gate()

    async def submit_and_leave() -> None:
        worker.open().score(chunks[0])

    await asyncio.to_thread(asyncio.run, submit_and_leave())
    await vad.held()
    with caplog.at_level(logging.WARNING, logger="voxrelay.engines.local.vad_worker"):
        vad.gate.set()
        # The worker serves in order: once this is scored, the closed loop's hand-back was tried.
        got = await worker.open().score(chunks[1])
    assert np.array_equal(got, inline(vad, chunks[1:2])[0])
    assert worker.alive
    assert any("closed event loop" in r.getMessage() for r in caplog.records)
