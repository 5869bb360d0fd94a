"""JSON text frames at the standard library's C speed: `dumps` and `loads`, with `json`'s results. Pure.

A relay encodes every message it sends a client and decodes every one its upstream sends
(30,000 a second at 1000 Deepgram streams; docs/benchmarks.md, issue 17). The `json` module's
convenience layers cost more than its C halves there: `json.dumps(obj, ensure_ascii=False)`
builds a `JSONEncoder` per call, `JSONEncoder.encode` builds its C encoder per call, and
`json.loads` runs two regular expressions around the C scanner. Here the C encoder and
scanner are built once:

    text = dumps({"type": "interim_transcript", "transcript": "hello"})   # == json.dumps(..., ensure_ascii=False)
    data = loads(text)                                                   # == json.loads(text), errors included

`dumps` checks no circular references (its callers encode flat messages built from
dataclasses; a cycle would raise RecursionError, not ValueError). Where the C encoder is
missing or its signature differs (another Python), both fall back to `json`'s own calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _std
from typing import Any

__all__ = ["dumps", "loads"]

_ENCODER = json.JSONEncoder(ensure_ascii=False)
_DECODER = json.JSONDecoder()
_scan: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]  # C, unstubbed


def _c_dumps() -> Callable[[Any], str] | None:
    """The C encoder with `JSONEncoder(ensure_ascii=False)`'s settings, if this Python has one that works."""
    make = getattr(_std, "c_make_encoder", None)
    if make is None:
        return None
    try:
        # (markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan),
        # as JSONEncoder.iterencode passes them.
        encode = make(None, _ENCODER.default, _std.encode_basestring, None, ": ", ", ", False, False, True)

        def c_dumps(obj: Any) -> str:
            return "".join(encode(obj, 0))

        sample = {"a": "é\n", "b": [1.5, True, None, 2], "c": {"d": float("inf")}}
        return c_dumps if c_dumps(sample) == _ENCODER.encode(sample) else None
    except Exception:  # another signature: json's own path
        return None


dumps: Callable[[Any], str] = _c_dumps() or _ENCODER.encode


def loads(text: str) -> Any:
    """`json.loads(text)`: the same value, the same errors. A frame that is one JSON value with nothing
    around it (every frame a server sends) takes the C scanner alone."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)  # leading whitespace, or not JSON: json's answer (its error)
    if end == len(text):
        return value
    return json.loads(text)  # trailing whitespace, or extra data: json's answer
