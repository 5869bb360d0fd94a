"""Engine registry: a name maps to its engine and settings classes, imported only when needed.

Adding an engine is one package in this folder (its engine and its `EngineSettings` model)
plus one line in `ENGINES`. Keep the package's `__init__.py` and settings module free of the
engine's dependencies: every settings model is imported to check the environment at start-up.

Call order at start-up: `check_environment()` (every `VOXRELAY_*` variable must be known),
then `create_engine(name, overrides)`, which builds the settings before it imports the
engine, so a bad option is refused before any model or SDK loads.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from voxrelay.engines.base import Engine, EngineFailure
from voxrelay.engines.settings import EngineSettings, SettingsError, closest, env_names, load_settings
from voxrelay.settings import Settings

__all__ = [
    "ENGINES",
    "Registration",
    "SettingsError",
    "check_environment",
    "create_engine",
    "engine_class",
    "known_env_names",
    "settings_class",
]


@dataclass(frozen=True)
class Registration:
    """Where an engine lives: "module:Class" of the engine and of its settings, and its pip extra."""

    engine: str
    settings: str
    extra: str


ENGINES: dict[str, Registration] = {
    "local": Registration(
        engine="voxrelay.engines.local.engine:LocalEngine",
        settings="voxrelay.engines.local.settings:LocalSettings",
        extra="whisper",
    ),
    "deepgram": Registration(
        engine="voxrelay.engines.deepgram.engine:DeepgramEngine",
        settings="voxrelay.engines.deepgram.settings:DeepgramSettings",
        extra="deepgram",
    ),
}

# `VOXRELAY_*` variables that other voxrelay programs read, not the server: a shell that runs
# both must not stop `voxrelay serve`.
NOT_SERVER_SETTINGS = frozenset({
    "VOXRELAY_API_KEY",  # the Electron app's gateway key (frontend/src/main/settings.ts)
    "VOXRELAY_GATEWAY_URL",  # the Electron app's and the web dev server's gateway
    "VOXRELAY_WORKER_KEY",  # deploy/compose.yaml: interpolated into the services' own settings
    "VOXRELAY_CHROMIUM",  # the browser the end-to-end tests drive
})


def _registration(name: str) -> Registration:
    try:
        return ENGINES[name]
    except KeyError:
        hint = closest(name, ENGINES)
        raise EngineFailure(
            f"unknown engine {name!r}"
            + (f" (did you mean {hint!r}?)" if hint else "")
            + f"; choose one of: {', '.join(sorted(ENGINES))}"
        ) from None


def _load(target: str, engine: str, extra: str) -> Any:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise EngineFailure(
            f"engine {engine!r} needs the {exc.name!r} package: pip install 'voxrelay[{extra}]'"
        ) from exc
    return getattr(module, class_name)


def settings_class(name: str) -> type[EngineSettings]:
    """The settings model of the engine registered as `name` (light: loads no model or SDK).

    Raises:
        EngineFailure: unknown name.
    """
    registration = _registration(name)
    cls: type[EngineSettings] = _load(registration.settings, name, registration.extra)
    return cls


def engine_class(name: str) -> type[Engine]:
    """The engine class registered as `name`.

    Raises:
        EngineFailure: unknown name, or the engine's optional dependencies are missing.
    """
    registration = _registration(name)
    cls: type[Engine] = _load(registration.engine, name, registration.extra)
    return cls


def create_engine(name: str, overrides: Mapping[str, object] | None = None) -> Engine:
    """The engine registered as `name`, built from its settings: environment, then `overrides` on top.

    Args:
        overrides: option name -> value (CLI flags); each must be an option of this engine.

    Raises:
        SettingsError: an unknown option or an invalid value (checked before the engine is imported).
        EngineFailure: unknown engine, missing optional dependencies, or the engine refuses to start.
    """
    settings = load_settings(settings_class(name), overrides, what=f"engine {name!r}")
    factory: Callable[[EngineSettings], Engine] = engine_class(name)
    return factory(settings)


def known_env_names() -> set[str]:
    """Every environment variable a settings model reads: the gateway's and each engine's, old names too."""
    known = {name for names in env_names(Settings).values() for name in names}
    for engine in ENGINES:
        known.update(name for names in env_names(settings_class(engine)).values() for name in names)
    return known


def check_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line per `VOXRELAY_*` variable that no settings model knows, with the closest known name.

    An empty list means the environment is fine; `voxrelay serve` refuses to start otherwise.
    """
    environ = os.environ if environ is None else environ
    known = known_env_names()
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith("VOXRELAY_") or upper in known or upper in NOT_SERVER_SETTINGS:
            continue
        hint = closest(upper, sorted(known))
        problems.append(f"unknown setting {name}" + (f": did you mean {hint}?" if hint else ""))
    return problems
