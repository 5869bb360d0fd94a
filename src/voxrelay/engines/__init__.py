"""Engine registry: a name maps to "module:Class", imported only when that engine is chosen.

Adding an engine is one module in this package plus one line in `ENGINES`.
"""

from __future__ import annotations

import importlib
from typing import Any

from voxrelay.engines.base import Engine, EngineFailure

__all__ = ["ENGINES", "create_engine", "engine_class"]

ENGINES: dict[str, str] = {
    "local": "voxrelay.engines.local.engine:LocalEngine",
    "deepgram": "voxrelay.engines.deepgram.engine:DeepgramEngine",
}


def engine_class(name: str) -> type[Engine]:
    """The engine class registered as `name`.

    Raises:
        EngineFailure: unknown name, or the engine's optional dependencies are missing.
    """
    try:
        target = ENGINES[name]
    except KeyError:
        raise EngineFailure(f"unknown engine {name!r}; choose one of: {', '.join(sorted(ENGINES))}") from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        extra = {"local": "whisper"}.get(name, name)
        raise EngineFailure(
            f"engine {name!r} needs the {exc.name!r} package: pip install 'voxrelay[{extra}]'"
        ) from exc
    cls: type[Engine] = getattr(module, class_name)
    return cls


def create_engine(name: str, **kwargs: Any) -> Engine:
    """Instantiate the engine registered as `name` with engine-specific settings."""
    return engine_class(name)(**kwargs)
