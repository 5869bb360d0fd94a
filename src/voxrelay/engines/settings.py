"""Per-engine settings: the base every engine's settings model extends, and readable errors.

An engine's settings come from, highest priority first: keyword arguments (CLI flags, tests),
`VOXRELAY_<ENGINE>_<OPTION>` environment variables, the option's name from before per-engine
prefixes (`legacy_env`, e.g. `VOXRELAY_MODEL`), then the default. So an old name keeps working
and the new name wins when both are set; an empty variable counts as unset. An option a model does not have is refused
(`extra="forbid"`), never silently ignored.

Call order: `load_settings(LocalSettings, overrides)` returns the settings or raises
`SettingsError` whose lines name the variable or option at fault.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = ["EngineSettings", "SettingsError", "closest", "env_names", "load_settings", "validation_problems"]

S = TypeVar("S", bound=BaseSettings)


class SettingsError(ValueError):
    """Settings that cannot be used; `problems` has one readable line per fault."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class EngineSettings(BaseSettings):
    """Base of an engine's settings model; a subclass sets `env_prefix` and `legacy_env`."""

    # An empty variable counts as unset (as `VOXRELAY_MODEL=` meant "the engine's default" before).
    model_config = SettingsConfigDict(extra="forbid", env_ignore_empty=True)

    # field name -> the environment variable that set it before per-engine prefixes.
    legacy_env: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: the new names come before the old ones.
        return (init_settings, env_settings, _LegacyEnv(settings_cls, cls.legacy_env), dotenv_settings)


class _LegacyEnv(PydanticBaseSettingsSource):
    """Values from the old, unprefixed variable names (matched without regard to case, as pydantic-settings does)."""

    def __init__(self, settings_cls: type[BaseSettings], names: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._names = names

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        wanted = self._names.get(field_name, "").upper()
        for key, value in os.environ.items():
            if wanted and key.upper() == wanted and value != "":
                return value, field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


def env_names(cls: type[BaseSettings]) -> dict[str, tuple[str, ...]]:
    """Each field's environment variable names, the current one first (then an old alias, if any)."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    legacy: Mapping[str, str] = getattr(cls, "legacy_env", {})
    names: dict[str, tuple[str, ...]] = {}
    for field_name in cls.model_fields:
        old = legacy.get(field_name)
        names[field_name] = (prefix + field_name.upper(), old) if old else (prefix + field_name.upper(),)
    return names


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name`, or None when nothing is close.

    Words every known name has (VOXRELAY) say nothing and are left out of the comparison.
    A name whose other words all appear in known names ("LOCAL_BEAM" in "LOCAL_FINAL_BEAM_SIZE")
    is a shortening: the most similar of those wins. Otherwise a misspelling: difflib's closest.
    """
    known = list(known)
    split = [k.upper().split("_") for k in known]
    shared = set.intersection(*map(set, split)) if split else set()

    def meaningful(words: list[str]) -> str:
        return "_".join(w for w in words if w not in shared)

    words = [w for w in name.upper().split("_") if w not in shared]
    key = "_".join(words)
    by_key = {meaningful(kw): k for k, kw in zip(known, split, strict=True)}
    containing = [meaningful(kw) for kw in split if words and set(words) <= set(kw)]
    matches = difflib.get_close_matches(key, containing, n=1, cutoff=0) if containing else []
    matches = matches or difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.7)
    return by_key[matches[0]] if matches else None


def load_settings(cls: type[S], overrides: Mapping[str, object] | None = None, what: str = "") -> S:
    """`cls` from the environment and `overrides` (option name -> value).

    Args:
        what: names the model in messages, e.g. "engine 'local'".

    Raises:
        SettingsError: an unknown option or a value its field refuses; each line names it.
    """
    given: dict[str, Any] = dict(overrides or {})
    try:
        return cls(**given)
    except ValidationError as exc:
        raise SettingsError(validation_problems(exc, cls, given, what)) from None


def validation_problems(
    exc: ValidationError, cls: type[BaseSettings], overrides: Mapping[str, object], what: str = ""
) -> list[str]:
    """One line per error of `exc`, naming the option or the environment variable that was given."""
    names = env_names(cls)
    environ = {key.upper(): value for key, value in os.environ.items()}
    owner = f" for {what}" if what else ""
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "extra_forbidden":
            hint = closest(field, cls.model_fields)
            problems.append(f"unknown option {field!r}{owner}" + (f": did you mean {hint!r}?" if hint else ""))
            continue
        message = str(error["msg"])
        if field in overrides:
            source = f"option {field!r}{owner} = {overrides[field]!r}"
        else:
            given = [n for n in names.get(field, ()) if n in environ]
            source = f"{given[0]}={environ[given[0]]!r}" if given else f"option {field!r}{owner}"
        problems.append(f"invalid setting {source}: {message}")
    return problems
