"""What the short-window decode puts in front of Whisper's transcript: keyterms, prompt, language.

faster-whisper's `transcribe` turns `hotwords` and `initial_prompt` into one "previous text"
block, `<|startofprev|> hotwords prompt`, in front of the start-of-transcript sequence
(`WhisperModel.get_prompt`). The short-window path calls CTranslate2 itself, so it builds the
same block here; without it keyterms, prompt and language never reached the model on a live
stream. Whisper reads the block as text that came before, so a spelled-out name in it makes
the model likelier to spell the name that way; it is not a constraint.

The start-of-transcript sequence carries the language token for multilingual models
(`<|startoftranscript|><|fr|><|transcribe|>`); English-only models have no language tokens,
so a stream asking them for another language is refused (`language_error`) rather than
silently transcribed as English.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_PREVIOUS_TOKENS", "keyterm_text", "language_error", "previous_text", "transcript_tokenizer"]

# Whisper's text context is 448 tokens; faster-whisper caps the previous-text block at half
# of it (less the `<|startofprev|>` token), so the transcript keeps the other half.
MAX_PREVIOUS_TOKENS = 223


def keyterm_text(keyterms: tuple[str, ...] | list[str]) -> str | None:
    """The stream's keyterms as Whisper's earlier text: "Glossary: AntiBERTa, ABlooper." (None: no keyterms).

    Measured on corpus clips (tiny.en, short windows): the bare list faster-whisper's users
    pass ("Ever tried") reads to Whisper as the speech just before, so it skipped those words
    in the clip and looped more often; labelled and ended with a period, it did neither.
    """
    terms = [t.strip() for t in keyterms if t.strip()]
    return f"Glossary: {', '.join(terms)}." if terms else None


def language_error(model_name: str, multilingual: bool, language: str | None) -> str | None:
    """Why `model_name` cannot transcribe `language`, or None when it can (None = the model's default)."""
    if language is None or multilingual or language.lower() == "en":
        return None
    return (
        f"the local model {model_name!r} is English-only and cannot transcribe language {language!r}; "
        "use language 'en' (or leave it out), or run a multilingual model (VOXRELAY_LOCAL_MODEL)"
    )


def transcript_tokenizer(hf_tokenizer: Any, multilingual: bool, language: str | None) -> Any:
    """faster-whisper's `Tokenizer` whose `sot_sequence` starts a transcript in `language`.

    For multilingual models that is `<|startoftranscript|><|language|><|transcribe|>` (None =
    English here; the caller detects the language first when the stream did not name one);
    English-only models have just `<|startoftranscript|>`. Raises ValueError for a language
    Whisper does not know.
    """
    from faster_whisper.tokenizer import Tokenizer

    if not multilingual:
        return Tokenizer(hf_tokenizer, False)
    return Tokenizer(hf_tokenizer, True, task="transcribe", language=(language or "en").lower())


def previous_text(tokenizer: Any, *, hotwords: str | None, prompt: str | None) -> list[int]:
    """The `<|startofprev|>` block for `hotwords` and `prompt`, as faster-whisper builds it ([] when both are empty).

    Hotwords come first and are kept whole (up to the cap); of the prompt (earlier speech)
    the most recent tokens are kept, as they matter most to what is said next.
    """
    tokens: list[int] = []
    if hotwords and hotwords.strip():
        tokens.extend(tokenizer.encode(" " + hotwords.strip())[:MAX_PREVIOUS_TOKENS])
    if prompt and prompt.strip():
        room = MAX_PREVIOUS_TOKENS - len(tokens)
        if room > 0:
            tokens.extend(tokenizer.encode(" " + prompt.strip())[-room:])
    return [tokenizer.sot_prev, *tokens] if tokens else []
