"""JSON text frames at C speed: `dumps` (json's own text) and `loads` (json's values, parsed by orjson). Pure.

A relay encodes every message it sends a client and decodes every one its upstream sends
(30,000 a second at 1000 Deepgram streams; docs/benchmarks.md, issue 17). The `json` module's
convenience layers cost more than its C halves there: `json.dumps(obj, ensure_ascii=False)`
builds a `JSONEncoder` per call, `JSONEncoder.encode` builds its C encoder per call, and
`json.loads` runs two regular expressions around the C scanner. Here the C encoder is built
once, and `loads` (its one caller: the Deepgram engine's reader of upstream frames) is
orjson's parser, ~3x json's C scanner on a result with words (13.6 -> 4.3 us, AMD EPYC;
docs/benchmarks.md). Its values are `json.loads`'s, but for one documented difference:
an integer beyond 64 bits becomes a float (no Deepgram frame has one). What orjson refuses
(not JSON, NaN, Infinity, lone surrogates) goes to `json.loads`, so errors stay json's:

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

import orjson

__all__ = ["dumps", "loads"]

_ENCODER = json.JSONEncoder(ensure_ascii=False)


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
    """`json.loads(text)`: the same value (but an integer beyond 64 bits, which comes back as a float) and
    the same errors."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # not JSON, or what only json takes (NaN, Infinity, lone surrogates): json's answer
