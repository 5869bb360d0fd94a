"""LocalSettings: VOXRELAY_LOCAL_* names, the old VOXRELAY_* names as aliases, validation that names the variable."""

from __future__ import annotations

import os

import pytest

from voxrelay.engines.local.engine import LocalEngine
from voxrelay.engines.local.settings import LocalSettings
from voxrelay.engines.settings import SettingsError, load_settings

# The options `voxrelay serve` gave the local engine before per-engine settings, with their defaults (three changed
# since; decode_workers follows the cores, here two of them: see `two_cores`).
BEFORE = {
    "model": "tiny.en",
    "device": "cpu",
    "compute_type": "int8",
    "cpu_threads": 1,  # was 0 (CTranslate2's 4) before issue 16's decode workers, one thread each
    "decode_workers": 2,  # was 1; now one per usable core
    "interim_interval": 0.5,
    "final_beam_size": 1,  # was 2 before issue 16 (silence padding made beam 1 as good and cheaper)
    "final_context_s": 3.0,
}
# A valid value for each, different from the default.
OTHER = {
    "model": "base.en",
    "device": "cuda",
    "compute_type": "float16",
    "cpu_threads": 4,
    "decode_workers": 3,
    "interim_interval": 0.25,
    "final_beam_size": 5,
    "final_context_s": 0.0,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("VOXRELAY_"):
            monkeypatch.delenv(name)


def allow_cores(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Make the process's CPU affinity `count` cores, as `usable_cores` reads it."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(count)), raising=False)


@pytest.fixture
def two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_cores(monkeypatch, 2)


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 2), (6, 6), (16, 16), (64, 16)])
def test_decode_workers_default_to_one_per_usable_core(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    allow_cores(monkeypatch, cores)
    assert LocalSettings().decode_workers == workers


def test_decode_workers_set_explicitly_ignore_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    allow_cores(monkeypatch, 8)
    monkeypatch.setenv("VOXRELAY_LOCAL_DECODE_WORKERS", "1")
    assert LocalSettings().decode_workers == 1


@pytest.mark.usefixtures("two_cores")
def test_defaults_are_those_of_before() -> None:
    settings = LocalSettings()
    assert {name: getattr(settings, name) for name in BEFORE} == BEFORE
    assert settings.max_segment_s == 6.0 and settings.context_prompt is False
    assert (settings.final_window_pad_s, settings.interim_window_pad_s) == (6.0, 2.0)
    assert (settings.file_cpu_threads, settings.file_nice) == (1, 19)
    assert settings.token_threads == 1  # issue 16: the token loop on its own one-thread handle


@pytest.mark.parametrize("option", sorted(BEFORE))
def test_the_new_name_sets_the_option(monkeypatch: pytest.MonkeyPatch, option: str) -> None:
    monkeypatch.setenv(f"VOXRELAY_LOCAL_{option.upper()}", str(OTHER[option]))
    assert getattr(LocalSettings(), option) == OTHER[option]


@pytest.mark.parametrize("option", sorted(BEFORE))
def test_the_old_name_still_works(monkeypatch: pytest.MonkeyPatch, option: str) -> None:
    assert LocalSettings.legacy_env[option] == f"VOXRELAY_{option.upper()}"
    monkeypatch.setenv(f"VOXRELAY_{option.upper()}", str(OTHER[option]))
    assert getattr(LocalSettings(), option) == OTHER[option]


def test_the_new_name_wins_over_the_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_FINAL_BEAM_SIZE", "4")
    monkeypatch.setenv("VOXRELAY_LOCAL_FINAL_BEAM_SIZE", "5")
    monkeypatch.setenv("VOXRELAY_MODEL", "small.en")
    monkeypatch.setenv("VOXRELAY_LOCAL_MODEL", "base.en")
    settings = LocalSettings()
    assert (settings.final_beam_size, settings.model) == (5, "base.en")


def test_a_keyword_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_LOCAL_FINAL_BEAM_SIZE", "5")
    monkeypatch.setenv("VOXRELAY_FINAL_CONTEXT_S", "5")
    settings = LocalSettings(final_beam_size=1, final_context_s=0)
    assert (settings.final_beam_size, settings.final_context_s) == (1, 0)


def test_options_that_had_no_variable_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_LOCAL_MAX_SEGMENT_S", "10")
    monkeypatch.setenv("VOXRELAY_LOCAL_CONTEXT_PROMPT", "true")
    monkeypatch.setenv("VOXRELAY_LOCAL_FILE_CPU_THREADS", "2")
    monkeypatch.setenv("VOXRELAY_LOCAL_FILE_NICE", "0")
    settings = LocalSettings()
    assert (settings.max_segment_s, settings.context_prompt) == (10, True)
    assert (settings.file_cpu_threads, settings.file_nice) == (2, 0)


def test_an_unknown_keyword_is_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(LocalSettings, {"beam": 3}, what="engine 'local'")
    assert refused.value.problems == ("unknown option 'beam' for engine 'local': did you mean 'final_beam_size'?",)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("VOXRELAY_LOCAL_FINAL_BEAM_SIZE", "0", "greater than or equal to 1"),
        ("VOXRELAY_FINAL_BEAM_SIZE", "11", "less than or equal to 10"),
        ("VOXRELAY_LOCAL_DECODE_WORKERS", "two", "valid integer"),
        ("VOXRELAY_INTERIM_INTERVAL", "0", "greater than 0"),
        ("VOXRELAY_LOCAL_CPU_THREADS", "-1", "greater than or equal to 0"),
        ("VOXRELAY_LOCAL_FILE_CPU_THREADS", "-1", "greater than or equal to 0"),
        ("VOXRELAY_LOCAL_FILE_NICE", "20", "less than or equal to 19"),
    ],
)
def test_a_bad_value_names_the_variable_that_was_set(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:
        load_settings(LocalSettings)
    [problem] = refused.value.problems
    assert problem.startswith(f"invalid setting {variable}={value!r}: ") and says in problem, problem


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXRELAY_MODEL", "")
    assert LocalSettings().model == "tiny.en"
    monkeypatch.setenv("VOXRELAY_MODEL", "small.en")
    monkeypatch.setenv("VOXRELAY_LOCAL_MODEL", "")
    assert LocalSettings().model == "small.en"
    with pytest.raises(SettingsError, match="at least 1 character"):
        load_settings(LocalSettings, {"model": ""})


def test_a_bad_keyword_names_the_option() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(LocalSettings, {"final_context_s": 11}, what="engine 'local'")
    [problem] = refused.value.problems
    assert problem.startswith("invalid setting option 'final_context_s' for engine 'local' = 11: "), problem


def test_the_engine_takes_its_options_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = LocalEngine(LocalSettings(model="base.en", final_beam_size=1, decode_workers=2, max_segment_s=9))
    assert (engine.model_name, engine.final_beam_size, engine.decode_workers, engine.max_segment_s) == (
        "base.en",
        1,
        2,
        9,
    )
    assert engine.decoder is None, "nothing loads before start()"
    monkeypatch.setenv("VOXRELAY_MODEL", "small.en")
    assert LocalEngine().model_name == "small.en", "without settings, the engine reads the environment"
