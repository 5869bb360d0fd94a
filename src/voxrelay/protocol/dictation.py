"""Spoken punctuation ("dictation"): "Dear Maria comma thank you period" -> "Dear Maria, thank you." Sans-I/O.

Engines that do not do it themselves (the local engine; Deepgram does its own) run results
through `dictate_words` (a result with word timings) or `dictate_text` (text only).

Commands (case and Whisper's own punctuation on them ignored; hyphenated spellings such as
"semi-colon" too):
    comma ,   period / full stop .   question mark ?   exclamation point / exclamation mark !
    colon :   semicolon ;   new line \\n   new paragraph \\n\\n
    open quote "   close quote / end quote / unquote "
A closing mark attaches to the previous word (no space before it); an opening quote to the next
word; a line break ends the previous word with nothing after it. The word after . ? ! or a line
break is capitalized. A command's mark replaces Whisper's own marks next to it ("Maria, comma."
-> "Maria,"), so nothing is doubled.

A candidate is a command only when nothing in its context says it is an ordinary word (a veto)
and it is set off from the speech on both sides (evidence); see `_vetoed` and `_evidence`:
    vetoes    a determiner/possessive right before it ("a comma", "the period", "my new line");
              a preposition or verb right after it with no mark between ("period of", "colon is");
              a hyphen joining it to a neighbour ("comma-separated")
    before    the start of the result (the segmenter cut at a pause there), Whisper's own mark on
              the word before it, or a pause of `PAUSE_S` before it (word timings only)
    after     the end of a final, Whisper's own mark on the command, a capitalized word after it
              (a new sentence), or a pause of `PAUSE_S` after it (word timings only)
An interim's last word is no evidence: the speaker may be saying "comma-separated"; the final
decides. So an interim can show "comma" that its final turns into ",", but a final never shows
a command it converted.

Words lists keep Deepgram's shape: punctuation is never a word of its own. A command's words
are removed, its mark goes on the previous word's `punctuated_word` (an opening quote in front
of the next word's). A mark with no word before it in the result (the command began the result)
stays at the transcript's start, with no word to carry it. A closing mark there is dropped when
`before` (the text already sent) ends with a mark or is empty (it cannot replace a mark already
sent); a line break is dropped only when `before` is empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from voxrelay.protocol.events import Word

__all__ = ["COMMANDS", "DICTATION_ENDPOINTING_MS", "GLOSSARY", "PAUSE_S", "dictate_text", "dictate_words"]

OPEN_QUOTE = "\u0000open"  # an internal token: the opening quote goes on the next word, not the previous
COMMANDS: dict[tuple[str, ...], str] = {
    ("comma",): ",",
    ("period",): ".",
    ("full", "stop"): ".",
    ("fullstop",): ".",
    ("question", "mark"): "?",
    ("exclamation", "point"): "!",
    ("exclamation", "mark"): "!",
    ("colon",): ":",
    ("semicolon",): ";",
    ("semi", "colon"): ";",
    ("new", "line"): "\n",
    ("newline",): "\n",
    ("new", "paragraph"): "\n\n",
    ("open", "quote"): OPEN_QUOTE,
    ("close", "quote"): '"',
    ("end", "quote"): '"',
    ("unquote",): '"',
}
# The commands' spoken forms, for an engine to prime its recognizer with: tiny.en alone hears a dictated
# "comma" as "Kama" or "come up" and "semicolon" as "semi-clone" (tests/fixtures/dictation).
GLOSSARY = (
    "comma", "period", "full stop", "question mark", "exclamation point", "exclamation mark", "colon", "semicolon",
    "new line", "new paragraph", "open quote", "close quote", "end quote",
)
_LONGEST = max(len(key) for key in COMMANDS)
# The endpointing a dictation stream gets when its client names none. People pause before a command for
# longer than the 300 ms default; a command cut off into a final of its own is decoded alone ("comma" came
# out "Comment", a "period" loop) or loses its mark to Whisper's "." on the final already sent. Measured on
# tests/fixtures/dictation (/stt-stream, AMD EPYC): 26/44 commands converted at 300 ms, 40/44 at 800 ms.
DICTATION_ENDPOINTING_MS = 800
PAUSE_S = 0.15  # people pause around a command; fluent speech has no gap this long inside a phrase

# A command word right after these is a noun: "a comma", "the period", "our new line".
_DETERMINERS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "each", "every", "per", "my", "your", "our", "their",
    "his", "her", "its", "one", "another", "any", "no", "some", "which", "what", "whose", "trial", "first",
    "last", "next", "same",
})
# ...and right before these with no mark between: "period of time", "the colon is", "new line for".
_CONTINUATIONS = frozenset({
    "of", "for", "in", "on", "at", "to", "with", "from", "is", "was", "are", "were", "separated", "delimited",
})
_WHISPER_MARKS = ",.?!:;…"  # Whisper's own punctuation that a command's mark replaces
_SENTENCE_END = ".?!\n"
_MID_SENTENCE = frozenset({",", ";", ":", '"', OPEN_QUOTE})  # marks after which Whisper's capital is undone


@dataclass(slots=True)
class _Token:
    text: str  # as written, Whisper's punctuation included
    key: str  # lower case, letters and digits only: what commands are matched on
    word: Word | None = None  # the timed word it came from (dictate_words)
    dictated: bool = False  # it carries a command's mark, which a later command adds to but never replaces


def dictate_words(words: Sequence[Word], *, final: bool, before: str = "") -> tuple[str, tuple[Word, ...]]:
    """A result's transcript and words with its spoken commands turned into punctuation.

    `before` is the text already sent ahead of this result (the previous final), for
    capitalization and for a command that begins the result.
    """
    tokens: list[_Token] = []
    for word in words:
        text = word.punctuated_word.strip()
        if tokens and not _key(text):
            # A mark the aligner gave as a word of its own belongs to the word before it (Deepgram's shape);
            # the word keeps its own end: the mark's time is the pause after it, which `_gap` measures.
            tokens[-1].text += text
            continue
        tokens.append(_Token(text, _key(text), word))
    out, lead = _convert(tokens, final=final, before=before)
    transcript = _join(lead, out)
    return transcript, tuple(dataclasses.replace(t.word, punctuated_word=t.text) for t in out if t.word)


def dictate_text(text: str, *, final: bool, before: str = "") -> str:
    """`text` with its spoken commands turned into punctuation, judged without word timings."""
    tokens = [_Token(piece, _key(piece)) for piece in text.split()]
    out, lead = _convert(tokens, final=final, before=before)
    return _join(lead, out)


def _key(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _match(tokens: Sequence[_Token], i: int) -> tuple[int, str] | None:
    """(number of tokens, mark) of the command starting at token `i`, longest first; None if none does."""
    for size in range(_LONGEST, 0, -1):
        if i + size > len(tokens):
            continue
        words = tokens[i : i + size]
        if any(not t.key for t in words):
            continue
        # Inside a command, Whisper may put a mark only after the last word ("question, mark" is two words).
        if any(t.text.rstrip("\"'")[-1:] in _WHISPER_MARKS for t in words[:-1]):
            continue
        mark = COMMANDS.get(tuple(t.key for t in words))
        if mark is not None and not _hyphenated(words):
            return size, mark
    return None


def _hyphenated(words: Sequence[_Token]) -> bool:
    """'comma-separated', 'semi-colon': one token with a hyphen; only the spelled commands are commands."""
    return any("-" in t.text for t in words) and "".join(t.key for t in words) not in ("semicolon", "fullstop")


def _vetoed(tokens: Sequence[_Token], i: int, size: int) -> bool:
    """True when the candidate's neighbours say it is an ordinary word (see the module doc)."""
    previous = tokens[i - 1] if i > 0 else None
    last, following = tokens[i + size - 1], tokens[i + size] if i + size < len(tokens) else None
    if previous is not None and previous.key in _DETERMINERS and previous.text[-1:].isalnum():
        return True  # "a comma", "the period": nothing between the determiner and the word
    if following is not None and following.key in _CONTINUATIONS and last.text[-1:].isalnum():
        return True  # "period of time", "the colon is"
    if previous is not None and previous.text.endswith("-"):
        return True
    return following is not None and following.text.startswith("-")


def _evidence(tokens: Sequence[_Token], i: int, size: int, *, final: bool) -> bool:
    """True when the candidate is set off from the speech before it and from the speech after it.

    Dictated commands are: Whisper marks both sides ("Maria, comma, thank") or hears the pauses.
    One side alone is not enough: "In this case, colon cancer..." has a mark before "colon" only.
    """
    previous = tokens[i - 1] if i > 0 else None
    first, last = tokens[i], tokens[i + size - 1]
    following = tokens[i + size] if i + size < len(tokens) else None
    set_off_before = (
        previous is None  # the start of a result: the segmenter cut at a pause there
        or previous.text[-1:] in _WHISPER_MARKS
        or _gap(previous, first) >= PAUSE_S
    )
    set_off_after = (
        (following is None and final)  # an interim's last word may go on ("comma-separated")
        or last.text.rstrip("\"'")[-1:] in _WHISPER_MARKS
        or (following is not None and following.text[:1].isupper() and following.key != "i")
        or (following is not None and _gap(last, following) >= PAUSE_S)
    )
    return set_off_before and set_off_after


def _gap(left: _Token, right: _Token) -> float:
    """Seconds of silence between two timed tokens; 0 without timings."""
    if left.word is None or right.word is None:
        return 0.0
    return right.word.start - left.word.end


def _convert(tokens: list[_Token], *, final: bool, before: str) -> tuple[list[_Token], str]:
    """The tokens with commands applied, and marks that lead the result (no word in it before them)."""
    out: list[_Token] = []
    lead = ""  # marks with no word before them in this result
    capitalize = False  # the next word starts a sentence or a line
    lowercase = False  # the next word was capitalized only after a Whisper mark a command replaced
    open_quote = False  # the next word gets an opening quote
    i = 0
    while i < len(tokens):
        found = _match(tokens, i)
        if found is None or _vetoed(tokens, i, found[0]) or not _evidence(tokens, i, found[0], final=final):
            token = tokens[i]
            if capitalize:
                token.text = _upper_first(token.text)
            elif lowercase and token.text[1:2].islower():
                token.text = token.text[:1].lower() + token.text[1:]
            if open_quote:
                token.text = '"' + token.text
            out.append(token)
            capitalize = lowercase = open_quote = False
            i += 1
            continue
        size, mark = found
        i += size
        replaced = ""
        if out and not out[-1].dictated:
            stripped = out[-1].text.rstrip(_WHISPER_MARKS)
            replaced, out[-1].text = out[-1].text[len(stripped) :], stripped
        lowercase = mark in _MID_SENTENCE and (replaced[-1:] in ".?!" or tokens[i - 1].text[-1:] in ".?!")
        capitalize = mark[-1:] in _SENTENCE_END or (capitalize and mark == OPEN_QUOTE)
        if mark == OPEN_QUOTE:
            open_quote = True
        elif out:
            out[-1].text += mark
            out[-1].dictated = True
        elif before.strip() and (mark.startswith("\n") or before.rstrip(" ")[-1:] not in _WHISPER_MARKS):
            lead += mark  # nothing in this result to carry it: the transcript starts with it
    return out, lead  # an opening quote with no word after it is dropped: it opens nothing


def _upper_first(text: str) -> str:
    for index, char in enumerate(text):
        if char.isalpha():
            return text[:index] + char.upper() + text[index + 1 :]
    return text


def _join(lead: str, tokens: Sequence[_Token]) -> str:
    """The transcript: words joined by a space, none after a line break nor inside a hyphenated word."""
    text = lead
    for token in tokens:
        if text and not text.endswith("\n") and not (token.text[:1] == "-" and token.text[1:2].isalnum()):
            text += " "
        text += token.text
    return text.strip(" ")
