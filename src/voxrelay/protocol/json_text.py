"""JSON text frames at C speed: `dumps` and `loads`, both orjson's, with json's answers kept for the rest. Pure.

A relay encodes every message it sends a client and decodes every one its upstream sends
(30,000 a second at 1000 Deepgram streams; docs/benchmarks.md, issue 17). The `json` module
formats each float through `float.__repr__` and builds encoders per call; orjson does neither:
a `/v1/listen` result with 7 words is encoded in 1.5 us instead of 15 (json's C encoder, built
once), a result with words parsed in 4.3 us instead of 13.6 (AMD EPYC; docs/benchmarks.md).

    text = dumps({"type": "interim_transcript", "transcript": "hello"})   # '{"type":"interim_transcript",...}'
    data = loads(text)                                                   # == json.loads(text), errors included

`dumps` writes compact JSON, as Deepgram's own frames are (no space after `:` and `,`), UTF-8
text unescaped; `loads(dumps(x)) == json.loads(json.dumps(x))` but where json writes what is
not JSON: a NaN or an infinity becomes `null` (json writes `NaN`, which `JSON.parse` refuses).
What orjson will not encode (integers beyond 64 bits, lone surrogates, non-string keys) is
json's text; what neither can encode raises TypeError, as json does.
`loads` gives json's values but for one documented difference: an integer beyond 64 bits
becomes a float (no Deepgram frame has one). What orjson refuses (not JSON, NaN, Infinity,
lone surrogates) goes to `json.loads`, so errors stay json's.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

_JSON = json.JSONEncoder(ensure_ascii=False)


def dumps(obj: Any) -> str:
    """Compact JSON text for `obj` (orjson's); json's text for what only json encodes, json's TypeError for
    what neither does."""
    try:
        return orjson.dumps(obj).decode()
    except orjson.JSONEncodeError:
        return _JSON.encode(obj)  # an integer past 64 bits, a lone surrogate, a non-string key: json's text


def loads(text: str) -> Any:
    """`json.loads(text)`: the same value (but an integer beyond 64 bits, which comes back as a float) and
    the same errors."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # not JSON, or what only json takes (NaN, Infinity, lone surrogates): json's answer
