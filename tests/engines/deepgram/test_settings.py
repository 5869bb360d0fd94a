"""DeepgramSettings: VOXRELAY_DEEPGRAM_* names, VOXRELAY_MODEL as an alias, the URL check; the key is no setting."""

from __future__ import annotations

import os
import uuid

import pytest

from voxrelay.engines.deepgram.engine import DeepgramEngine
from voxrelay.engines.deepgram.settings import DeepgramSettings
from voxrelay.engines.settings import SettingsError, load_settings

DEFAULTS = {
    "model": "nova-3",
    "url": None,
    "keepalive_s": 5.0,
    "close_timeout_s": 10.0,
    "open_timeout_s": 10.0,
    "send_timeout_s": 10.0,
    "max_reconnects": 5,
    "reconnect_base_s": 0.5,
    "reconnect_cap_s": 10.0,
    "replay_s": 30.0,
    "file_timeout_s": 300.0,  # new with file transcription
    "file_max_retries": 2,  # the SDK's own default
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("VOXRELAY_"):
            monkeypatch.delenv(name)


def test_defaults_are_those_of_the_engine_before() -> None:
    assert DeepgramSettings().model_dump() == DEFAULTS


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("model", "nova-2", "nova-2"),
        ("url", "ws://127.0.0.1:9", "ws://127.0.0.1:9"),
        ("keepalive_s", "0.2", 0.2),
        ("close_timeout_s", "1.5", 1.5),
        ("open_timeout_s", "2", 2.0),
        ("send_timeout_s", "0.5", 0.5),
        ("max_reconnects", "0", 0),
        ("reconnect_base_s", "0.02", 0.02),
        ("reconnect_cap_s", "0.2", 0.2),
        ("replay_s", "0", 0.0),
        ("file_timeout_s", "12.5", 12.5),
        ("file_max_retries", "0", 0),
    ],
)
def test_each_option_has_a_variable(monkeypatch: pytest.MonkeyPatch, option: str, value: str, expected: object) -> None:
    monkeypatch.setenv(f"VOXRELAY_DEEPGRAM_{option.upper()}", value)
    assert getattr(DeepgramSettings(), option) == expected


def test_voxrelay_model_still_works_and_the_new_name_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_MODEL", "nova-2")
    assert DeepgramSettings().model == "nova-2"
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_MODEL", "nova-3-medical")
    assert DeepgramSettings().model == "nova-3-medical"
    assert DeepgramSettings(model="base").model == "base", "a keyword wins over both"


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("ws://127.0.0.1:8765", "ws://127.0.0.1:8765"),
        ("  wss://dg.example.com/v1/listen ", "wss://dg.example.com/v1/listen"),
        ("https://dg.example.com", "https://dg.example.com"),
        ("http://pool:8765/", "http://pool:8765/"),
        ("", None),
    ],
)
def test_a_good_url_is_kept(monkeypatch: pytest.MonkeyPatch, url: str, kept: str | None) -> None:
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_URL", url)
    assert DeepgramSettings().url == kept


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("127.0.0.1:8765", "must start with ws://, wss://, http:// or https://"),
        ("ftp://dg.example.com", "must start with ws://, wss://, http:// or https://"),
        ("ws://", "has no host"),
        ("wss:///v1/listen", "has no host"),
    ],
)
def test_a_bad_url_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, url: str, says: str) -> None:
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_URL", url)
    with pytest.raises(SettingsError) as refused:
        load_settings(DeepgramSettings)
    [problem] = refused.value.problems
    assert problem.startswith(f"invalid setting VOXRELAY_DEEPGRAM_URL={url!r}: ") and says in problem, problem


def test_a_local_option_is_refused_for_deepgram() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(DeepgramSettings, {"final_beam_size": 1}, what="engine 'deepgram'")
    [problem] = refused.value.problems
    assert problem.startswith("unknown option 'final_beam_size' for engine 'deepgram'"), problem


def test_the_api_key_is_not_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"dg-{uuid.uuid4().hex}"
    monkeypatch.setenv("DEEPGRAM_API_KEY", key)
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_MAX_RECONNECTS", "x")  # an error message must not carry it either
    with pytest.raises(SettingsError) as refused:
        load_settings(DeepgramSettings)
    assert key not in str(refused.value)
    monkeypatch.delenv("VOXRELAY_DEEPGRAM_MAX_RECONNECTS")
    settings = DeepgramSettings()
    assert key not in repr(settings) and key not in settings.model_dump_json()
    with pytest.raises(SettingsError, match="unknown option 'api_key'"):
        load_settings(DeepgramSettings, {"api_key": key}, what="engine 'deepgram'")


def test_the_engine_takes_its_options_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-test")
    engine = DeepgramEngine(DeepgramSettings(model="nova-2", url="ws://127.0.0.1:9", keepalive_s=0.2, max_reconnects=0))
    assert (engine.model_name, engine.keepalive_s, engine.max_reconnects) == ("nova-2", 0.2, 0)
    assert "ws://127.0.0.1:9" in repr(engine)
    monkeypatch.setenv("VOXRELAY_DEEPGRAM_REPLAY_S", "7")
    assert DeepgramEngine().replay_s == 7, "without settings, the engine reads the environment"
