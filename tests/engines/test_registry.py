"""The engine registry: engines built from their own settings; unknown variables and options refused by name."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from voxrelay.engines import (
    ENGINES,
    check_environment,
    create_engine,
    engine_class,
    known_env_names,
    settings_class,
)
from voxrelay.engines.base import Engine, EngineFailure
from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.settings import EngineSettings, SettingsError
from voxrelay.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("VOXRELAY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-registry-test")


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_every_registration_names_an_engine_and_its_settings(name: str) -> None:
    assert issubclass(settings_class(name), EngineSettings)
    assert issubclass(engine_class(name), Engine) and engine_class(name).name == name
    assert ENGINES[name].extra in ("whisper", "deepgram")
    prefix = f"VOXRELAY_{name.upper()}_"
    assert settings_class(name).model_config["env_prefix"] == prefix


def test_create_engine_reads_the_environment_and_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_LOCAL_FINAL_BEAM_SIZE", "4")
    monkeypatch.setenv("VOXRELAY_MODEL", "small.en")
    engine = create_engine("local", {"model": "base.en"})
    assert isinstance(engine, LocalEngine)
    assert (engine.model_name, engine.final_beam_size) == ("base.en", 4)
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_URL", "ws://127.0.0.1:9")
    engine = create_engine("deepgram", {"max_reconnects": "0"})
    assert isinstance(engine, DeepgramEngine)
    assert (engine.model_name, engine.max_reconnects) == ("small.en", 0)


def test_an_option_the_engine_does_not_have_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        create_engine("local", {"beam": 3, "url": "ws://x"})
    assert refused.value.problems == (
        "unknown option 'beam' for engine 'local': did you mean 'final_beam_size'?",
        "unknown option 'url' for engine 'local'",
    )


def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_DECODE_WORKERS", "0")
    with pytest.raises(SettingsError, match=r"^invalid setting VOXRELAY_DECODE_WORKERS='0': .*greater than or equal"):
        create_engine("local")


def test_an_unknown_engine_is_refused_with_the_choices() -> None:
    refusal = r"unknown engine 'locl' \(did you mean 'local'\?\); choose one of: deepgram, local"
    with pytest.raises(EngineFailure, match=refusal):
        create_engine("locl")


def test_settings_are_checked_before_the_engine_is_imported() -> None:
    """Checking settings imports no model or SDK (a fresh interpreter, so nothing is preloaded).

    This also keeps each engine package's `__init__` light: `check_environment` imports every settings module.
    """
    code = (
        "import sys\n"
        "from voxrelay.engines import SettingsError, check_environment, create_engine\n"
        "assert check_environment({'VOXRELAY_LOCAL_BEAM': '3'})\n"
        "try:\n"
        "    create_engine('local', {'beam': 3})\n"
        "except SettingsError:\n"
        "    pass\n"
        "else:\n"
        "    sys.exit('not refused')\n"
        "loaded = [m for m in ('faster_whisper', 'onnxruntime', 'deepgram', 'voxrelay.engines.local.engine')"
        " if m in sys.modules]\n"
        "sys.exit(f'imported {loaded}' if loaded else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_environment_check_knows_every_settings_model() -> None:
    known = known_env_names()
    assert {f"VOXRELAY_{field.upper()}" for field in Settings.model_fields} <= known
    assert {"VOXRELAY_LOCAL_FINAL_BEAM_SIZE", "VOXRELAY_FINAL_BEAM_SIZE", "VOXRELAY_MODEL"} <= known
    assert {"VOXRELAY_DEEPGRAM_URL", "VOXRELAY_DEEPGRAM_REPLAY_S", "VOXRELAY_DEEPGRAM_MODEL"} <= known
    assert check_environment({name: "1" for name in known}) == []


def test_the_environment_check_names_every_unknown_variable_with_a_suggestion() -> None:
    environ = {
        "VOXRELAY_LOCAL_BEAM": "3",
        "VOXRELAY_MAX_SESION_S": "60",
        "voxrelay_deepgram_urll": "ws://x",
        "VOXRELAY_XYZZY": "1",
        "VOXRELAY_PORT": "8765",  # known
        "VOXRELAY_API_KEY": "k",  # the Electron app's, not the server's
        "HOME": "/root",  # not ours
    }
    assert check_environment(environ) == [
        "unknown setting VOXRELAY_LOCAL_BEAM: did you mean VOXRELAY_LOCAL_FINAL_BEAM_SIZE?",
        "unknown setting VOXRELAY_MAX_SESION_S: did you mean VOXRELAY_MAX_SESSION_S?",
        "unknown setting VOXRELAY_XYZZY",
        "unknown setting voxrelay_deepgram_urll: did you mean VOXRELAY_DEEPGRAM_URL?",
    ]


def test_the_environment_check_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_environment() == []
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_REPLAY", "5")
    assert check_environment() == ["unknown setting VOXRELAY_DEEPGRAM_REPLAY: did you mean VOXRELAY_DEEPGRAM_REPLAY_S?"]


def test_gateway_settings_keep_only_gateway_options() -> None:
    assert "engine" in Settings.model_fields
    for engine_option in ("model", "device", "final_beam_size", "deepgram_url"):
        assert engine_option not in Settings.model_fields
        with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
            Settings(**{engine_option: "x"})
