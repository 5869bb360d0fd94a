"""Deepgram's Live API (`/v1/listen`) request: query parameters and credential forms. Sans-I/O.

Used before the upgrade by `voxrelay.gateway.listen_v1`:
    params = parse_params(query_items)   # or ListenRequestError -> HTTP 400 (as Deepgram does)
`authorized` and `pick_subprotocol` read Deepgram's credential forms (`Token KEY`, the
subprotocol `token, KEY`); the gateway's admission (`security.admission`) applies them.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from voxrelay.protocol.dictation import DICTATION_ENDPOINTING_MS
from voxrelay.protocol.messages import StreamOptions

__all__ = [
    "DATA_0000",
    "DICTATION_NEEDS_PUNCTUATE",
    "ListenParams",
    "ListenRequestError",
    "NET_0001_REASON",
    "ParamWarning",
    "authorized",
    "parse_params",
    "pick_subprotocol",
]

# Deepgram applies dictation only with punctuation and says nothing when it does not; a 400 says why instead.
DICTATION_NEEDS_PUNCTUATE = (
    "Invalid query parameter `dictation`: dictation=true requires punctuate=true (or smart_format=true)."
)
NET_0001_REASON = "NET-0001: did not receive audio data or a text message within the timeout window"
DATA_0000 = "DATA-0000"

# Deepgram's defaults differ from /stt-stream's: no interims, no VAD events, no punctuation.
_DEFAULTS = {
    "interim_results": False, "vad_events": False, "punctuate": False, "smart_format": False, "dictation": False,
}
_DEFAULT_ENDPOINTING_MS = 300  # Deepgram's is 10 ms; Whisper needs whole phrases (see docs/deepgram.md)

# Parameters whose absence of support would silently change what the caller gets: refused (400).
_REFUSED: dict[str, str] = {
    "diarize": "speaker diarization",
    "diarize_model": "speaker diarization",
    "multichannel": "per-channel transcription",
    "redact": "redaction",
    "replace": "term replacement",
    "search": "search",
    "detect_entities": "entity detection",
    "callback": "callbacks",
}
# Values of refused parameters that ask for nothing, and so are accepted.
_HARMLESS_VALUES = {"false", ""}
# Formatting/bookkeeping parameters that can be ignored without losing any text: warned about in Metadata.
_IGNORED = {
    "callback_method",
    "extra",
    "filler_words",
    "language_hint",
    "mip_opt_out",
    "no_delay",
    "numerals",
    "profanity_filter",
    "tag",
    "version",
}
_SUPPORTED = {
    "model",
    "language",
    "encoding",
    "sample_rate",
    "channels",
    "interim_results",
    "endpointing",
    "utterance_end_ms",
    "vad_events",
    "punctuate",
    "smart_format",
    "keyterm",
    "keywords",
    "dictation",
}
_CONTAINER_ENCODINGS = {"opus", "ogg-opus"}
# The gateway's own parameters, the same on every endpoint (docs/security.md): `batch=true`.
_GATEWAY_PARAMS = {"batch"}
_KNOWN_ENCODINGS = {
    "linear16",
    "linear32",
    "flac",
    "alaw",
    "mulaw",
    "amr-nb",
    "amr-wb",
    "opus",
    "ogg-opus",
    "speex",
    "g729",
}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


# Parameters, before the upgrade.


class ListenRequestError(Exception):
    """A request to refuse before the upgrade, as Deepgram does: an HTTP status and a Deepgram-style body."""

    def __init__(self, status: int, err_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.err_code = err_code
        self.message = message

    def body(self, request_id: str) -> dict[str, str]:
        return {"err_code": self.err_code, "err_msg": self.message, "request_id": request_id}


@dataclass(frozen=True, slots=True)
class ParamWarning:
    parameter: str
    message: str
    type: str = "unsupported_parameter"


@dataclass(frozen=True, slots=True)
class ListenParams:
    """A `/v1/listen` request, validated.

    `encoding` is None for containerized audio (webm, ogg, wav: the header says the rest);
    `sample_rate`/`channels` are only meaningful with an encoding, as at Deepgram.
    """

    options: StreamOptions
    encoding: Literal["linear16", "opus", "ogg-opus"] | None = None
    sample_rate: int | None = None
    channels: int = 1
    warnings: tuple[ParamWarning, ...] = ()


def bad_request(message: str) -> ListenRequestError:
    """A 400 with Deepgram's wording for a bad query parameter (shared by the live and pre-recorded endpoints)."""
    return ListenRequestError(400, "Bad Request", message)


def bool_param(name: str, value: str) -> bool:
    """A true/false (or 1/0) query parameter, as Deepgram reads them."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise bad_request(f"Invalid query parameter `{name}`: expected true or false, got {value!r}.")


def int_param(name: str, value: str, low: int, high: int) -> int:
    """An integer query parameter within `low`..`high`."""
    try:
        number = int(value.strip())
    except ValueError:
        raise bad_request(f"Invalid query parameter `{name}`: expected an integer, got {value!r}.") from None
    if not low <= number <= high:
        raise bad_request(f"Invalid query parameter `{name}`: {number} is outside {low}..{high}.")
    return number


def sort_params(
    items: Iterable[tuple[str, str]], *, supported: Collection[str], refused: Mapping[str, str]
) -> tuple[dict[str, str], list[str], list[ParamWarning]]:
    """Sort a Deepgram query into (single-valued options, keyterms, warnings); shared by live and pre-recorded.

    The gateway's own parameters are skipped; `keyterm`/`keywords` collect (a keyword's ":boost" dropped:
    there are no weights here); a `refused` feature is a 400 unless asked to be off; anything not
    `supported` is ignored with a warning, as Deepgram's clients expect unknown options to pass.
    """
    single: dict[str, str] = {}
    keyterms: list[str] = []
    warnings: list[ParamWarning] = []
    for name, value in items:
        if name in _GATEWAY_PARAMS:
            continue  # read by the gateway's admission, not a Deepgram option
        if name in ("keyterm", "keywords"):
            term = value.rsplit(":", 1)[0] if name == "keywords" and re.search(r":-?[\d.]+$", value) else value
            if term.strip():
                keyterms.append(term.strip())
            continue
        if name in refused:
            if value.strip().lower() not in _HARMLESS_VALUES:
                raise bad_request(
                    f"Unsupported query parameter `{name}`: voxrelay's engines do not provide {refused[name]}."
                )
            continue
        if name not in supported:
            warnings.append(ParamWarning(name, f"`{name}` is not supported by voxrelay and was ignored."))
            continue
        single[name] = value
    return single, keyterms, warnings


def language_param(value: str | None) -> str | None:
    """Deepgram's `language` as the engines take it: a base language code, or None to detect it.

    Whisper knows base languages ("en-US" -> "en"); "multi" (Deepgram's code-switching) means "detect".
    """
    if value is None or value.lower() == "multi":
        return None
    if not _LANGUAGE.match(value):
        raise bad_request(f"Invalid query parameter `language`: {value!r} is not a BCP-47 tag.")
    return value.split("-")[0].lower()


def parse_params(items: Iterable[tuple[str, str]], *, min_endpointing_ms: int = 0) -> ListenParams:
    """Validate `/v1/listen` query parameters (repeated keys allowed, e.g. `keyterm`).

    Args:
        items: the query string as (name, value) pairs, in order.
        min_endpointing_ms: a floor for `endpointing` (the local engines need whole phrases);
            raising a client's value adds a warning.

    Raises:
        ListenRequestError: 400 with a Deepgram-like message for a bad or refused parameter.
    """
    single, keyterms, warnings = sort_params(items, supported=_SUPPORTED - _IGNORED, refused=_REFUSED)

    encoding = single.get("encoding")
    sample_rate: int | None = None
    channels = 1
    if encoding is not None:
        encoding = encoding.strip().lower()
        if encoding not in _KNOWN_ENCODINGS:
            raise bad_request(f"Invalid query parameter `encoding`: unknown encoding {encoding!r}.")
        if encoding != "linear16" and encoding not in _CONTAINER_ENCODINGS:
            raise bad_request(
                f"Unsupported encoding {encoding!r}: voxrelay takes linear16, opus or ogg-opus, "
                "or no encoding for containerized audio (webm, ogg, wav)."
            )
        if encoding == "linear16":
            if "sample_rate" not in single:
                raise bad_request("Missing query parameter `sample_rate`: it is required with encoding=linear16.")
            sample_rate = int_param("sample_rate", single["sample_rate"], 8000, 48000)
            channels = int_param("channels", single.get("channels", "1"), 1, 2)

    language = language_param(single.get("language"))

    endpointing: Any = _DEFAULT_ENDPOINTING_MS
    if "endpointing" in single:
        raw = single["endpointing"].strip().lower()
        endpointing = False if raw == "false" else int_param("endpointing", raw, 0, 60000)
    if endpointing is not False and endpointing < max(min_endpointing_ms, 10):
        floor = max(min_endpointing_ms, 10)
        if "endpointing" in single:
            warnings.append(
                ParamWarning("endpointing", f"endpointing={endpointing} was raised to {floor} ms for this engine.")
            )
        endpointing = floor
    if endpointing is not False:
        endpointing = min(endpointing, 10000)

    if "endpointing" not in single and "dictation" in single and bool_param("dictation", single["dictation"]):
        endpointing = max(endpointing, DICTATION_ENDPOINTING_MS)  # as /stt-stream: see protocol.dictation
    options: dict[str, Any] = {
        "model": single.get("model"),
        "language": language,
        "endpointing": endpointing,
        "keyterms": tuple(keyterms),
    }
    for name, default in _DEFAULTS.items():
        options[name] = bool_param(name, single[name]) if name in single else default
    options["punctuate"] = options["punctuate"] or options["smart_format"]
    if options["dictation"] and not options["punctuate"]:
        raise bad_request(DICTATION_NEEDS_PUNCTUATE)
    if "utterance_end_ms" in single:
        options["utterance_end_ms"] = int_param("utterance_end_ms", single["utterance_end_ms"], 1, 60000)
    try:
        stream_options = StreamOptions(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise bad_request(f"Invalid query parameter `{where}`: {first['msg']}.") from None
    return ListenParams(stream_options, encoding, sample_rate, channels, tuple(warnings))  # type: ignore[arg-type]


# Authentication, before the upgrade.


def _offered_protocols(header: str | None) -> list[str]:
    return [part.strip() for part in (header or "").split(",") if part.strip()]


def pick_subprotocol(sec_websocket_protocol: str | None) -> str | None:
    """The subprotocol to answer: browsers send `token, KEY` and fail unless `token` is echoed."""
    offered = _offered_protocols(sec_websocket_protocol)
    for scheme in ("token", "bearer"):
        for name in offered:
            if name.lower() == scheme:
                return name
    return None


def authorized(authorization: str | None, sec_websocket_protocol: str | None, keys: Sequence[str]) -> bool:
    """True if no keys are configured, or the request carries one (`Token KEY`, `Bearer KEY`, or subprotocol)."""
    if not keys:
        return True
    candidates: list[str] = []
    if authorization:
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() in ("token", "bearer") and credential.strip():
            candidates.append(credential.strip())
    offered = _offered_protocols(sec_websocket_protocol)
    if len(offered) >= 2 and offered[0].lower() in ("token", "bearer"):
        candidates.append(offered[1])
    return any(hmac.compare_digest(c.encode(), k.encode()) for c in candidates for k in keys)
