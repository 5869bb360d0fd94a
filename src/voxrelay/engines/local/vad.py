"""Streaming Silero VAD: speech probability for every 32 ms of 16 kHz audio.

faster-whisper ships the Silero v6 ONNX model but runs it over whole files; here the
LSTM state and the 64-sample context are carried from one call to the next, so a
stream can be scored as it arrives. One `SileroVad` (the ONNX session) is shared by
all streams; each stream keeps its own `VadState`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

import numpy as np

__all__ = ["SileroVad", "VadState", "WINDOW", "default_model_path"]

WINDOW = 512  # samples per probability at 16 kHz (32 ms), as the model was trained
_CONTEXT = 64


def default_model_path() -> str:
    """The Silero VAD model that faster-whisper ships."""
    from faster_whisper.utils import get_assets_path

    return os.path.join(get_assets_path(), "silero_vad_v6.onnx")


@dataclass
class VadState:
    """One stream's recurrent state and the samples not yet scored."""

    h: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), dtype=np.float32))
    c: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 128), dtype=np.float32))
    context: np.ndarray = field(default_factory=lambda: np.zeros(_CONTEXT, dtype=np.float32))
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


class SileroVad:
    """The shared ONNX session. `probabilities` is thread-safe and may run off the event loop."""

    def __init__(self, path: str | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            path or default_model_path(), providers=["CPUExecutionProvider"], sess_options=opts
        )
        self._lock = threading.Lock()

    def probabilities(self, state: VadState, audio: np.ndarray, flush: bool = False) -> np.ndarray:
        """Speech probabilities for each complete 512-sample window of `state.pending + audio`.

        Samples short of a window wait in `state` for the next call; `flush=True` pads
        them with silence and scores them too (end of stream).
        """
        samples = np.concatenate([state.pending, audio.astype(np.float32, copy=False)])
        usable = len(samples) - len(samples) % WINDOW
        if flush and usable < len(samples):
            samples = np.concatenate([samples, np.zeros(WINDOW - (len(samples) - usable), dtype=np.float32)])
            usable = len(samples)
        state.pending = samples[usable:].copy()
        if usable == 0:
            return np.zeros(0, dtype=np.float32)
        windows = samples[:usable].reshape(-1, WINDOW)
        # Each window is scored with the 64 samples that precede it, as in training.
        contexts = np.concatenate([state.context[None, :], windows[:-1, -_CONTEXT:]])
        state.context = windows[-1, -_CONTEXT:].copy()
        batch = np.concatenate([contexts, windows], axis=1)
        with self._lock:
            out, state.h, state.c = self._session.run(None, {"input": batch, "h": state.h, "c": state.c})
        return np.asarray(out, dtype=np.float32).reshape(-1)
