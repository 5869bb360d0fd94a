"""Model files: the shipped tiny.en and a hub name loaded from the hub cache (offline), with the token handle."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import clip, wer
from voxrelay.engines.local.model_files import resolve_model
from voxrelay.engines.local.whisper import WhisperDecoder


def test_a_hub_model_name_loads_both_handles_from_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model named by its hub id loads through faster-whisper's hub path; the token handle finds the same files.

    No network here: the hub cache is laid out by hand from the shipped tiny.en files, and the hub is offline.
    """
    revision = "0" * 40
    repo = tmp_path / "models--Systran--faster-whisper-tiny.en"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for shipped in Path(resolve_model("tiny.en")).iterdir():
        (snapshot / shipped.name).symlink_to(shipped)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    hub = WhisperDecoder("Systran/faster-whisper-tiny.en", token_threads=1)
    assert hub._tokens is not hub._model.model
    chosen = clip("s10_dictation_email.wav")
    assert wer([chosen.reference], [hub.decode(chosen.pcm(), window_pad_s=8.0, beam_size=2).text]) < 0.2
