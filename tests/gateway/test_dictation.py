"""Dictation on a real gateway with the local engine: spoken commands become punctuation, ordinary words stay.

The clips (tests/fixtures/dictation, see its README) are TTS phrases with a person's pauses
around each command ("Dear Maria <comma> thank you for the report <period>"), and fluent
sentences in which the same words are ordinary words ("the period of time was short").
Each clip is streamed in real time through `/stt-stream` (`dictation: true`) and through
`/v1/listen?dictation=true&punctuate=true`, seven at a time (the test server's session cap is
eight), and once as a file through `POST /v1/listen`.

A command counts as converted when its mark is where the hand-written `expected` text has it:
the output's words and marks are matched to the expected ones in order (difflib), and the words
on both sides of the mark must match too or be merely misheard one for one ("by ex" for "buy
eggs"), so neither a mark Whisper put elsewhere nor a Whisper mark next to a command word left in
("the budget period.") counts. `endpointing` is 800 ms, the default a dictation stream gets when it names
none (`/stt-stream` here relies on that default; `/v1/listen` names it): with 300 ms the pause before a
command ends the utterance, and a command alone in the next final cannot replace a mark Whisper
already put at the end of the previous one (protocol.dictation's module doc; 26/44 converted at 300 ms).
"""

from __future__ import annotations

import asyncio
import csv
import difflib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.support import LISTEN, STT, ServerThread, normalize, wer
from voxrelay.client import load_audio, to_linear16
from voxrelay.protocol.dictation import DICTATION_ENDPOINTING_MS

CLIPS = Path(__file__).parents[1] / "fixtures" / "dictation"
FRAME = 3200  # 100 ms of linear16 16 kHz
AT_ONCE = 7
ENDPOINTING_MS = DICTATION_ENDPOINTING_MS
COMMAND_WORDS = {"comma", "period", "colon", "semicolon", "semi-colon", "paragraph", "quote", "unquote"}
LEAD_MARKS = re.compile(r'^(?:[,.?!:;\s]|"(?!\w))+')
TOKEN = re.compile(r"[\w'-]+|\n\n|\n|[,.?!:;\"]")
MARKS = {",", ".", "?", "!", ":", ";", "\n", "\n\n", '"'}
# Measured (tiny.en, 2 AMD EPYC cores): 40/44 commands converted on each endpoint (slt 13/14, rms 13/15,
# awb 14/15), the same in 3 runs. The misses: in c16 the aligner gave "budget" no duration, so nothing shows
# the pause before "period"; in c18 tiny.en heard "early" as "our lead" (the ";" is there, but between a
# misheard word and an extra one, which this count does not credit); in c20 it heard "Anna period" as "in a
# period" (a determiner: it stays) and "comma" as "comment". Every other clip's finals hold no command word,
# and none may. The rate is asserted at 85 %: one or two more misheard commands on a slower machine (where
# the cuts fall elsewhere) are not a regression of the converter.
KNOWN_MISSES = {"c16_slt.wav", "c20_rms.wav"}


@dataclass(frozen=True)
class Row:
    file: str
    voice: str
    kind: str
    commands: int
    spoken: str
    expected: str


@dataclass
class Heard:
    finals: list[str] = field(default_factory=list)
    interims: list[str] = field(default_factory=list)
    words: list[dict[str, Any]] = field(default_factory=list)  # /v1/listen finals' words


def rows() -> list[Row]:
    with open(CLIPS / "refs.tsv", newline="") as f:
        return [
            Row(r["file"], r["voice"], r["kind"], int(r["commands"]), r["spoken"], r["expected"].replace("\\n", "\n"))
            for r in csv.DictReader(f, delimiter="\t")
        ]


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text)]


def converted(expected: str, heard: str) -> int:
    """How many of `expected`'s marks `heard` has in place: matched in order with the words, between words that
    match or were merely misheard (one for one).

    So neither a Whisper comma before a command heard as other words ("help, comment, in a" for "help, Anna")
    counts, nor a final "." after a command word left in ("the budget period."); "by ex\nBy apples" does.
    """
    want, got = tokens(expected), tokens(heard)
    matcher = difflib.SequenceMatcher(None, want, got, autojunk=False)
    pairs = [(block.a + i, block.b + i) for block in matcher.get_matching_blocks() for i in range(block.size)]
    fine = {b for _, b in pairs}
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "replace" and b2 - b1 <= a2 - a1:
            fine.update(range(b1, b2))  # misheard words, none extra
    return sum(
        1 for a, b in pairs if want[a] in MARKS and (b == 0 or b - 1 in fine) and (b + 1 == len(got) or b + 1 in fine)
    )


def command_words(text: str) -> list[str]:
    return [t for t in tokens(text) if t in COMMAND_WORDS]


def joined(finals: list[str]) -> str:
    """Finals as a client shows them: one after the other, a space between unless a line break ends one."""
    text = ""
    for final in (f for f in finals if f):
        text += final if not text or text.endswith("\n") or final[:1] in ",.?!:;\n" else " " + final
    return text


async def stream(server: ServerThread, endpoint: str, file: str, gate: asyncio.Semaphore) -> Heard:
    audio = to_linear16(load_audio(str(CLIPS / file), 16000))
    heard = Heard()
    async with gate:
        if endpoint == "stt-stream":
            url = STT.url(server)
        else:
            url = LISTEN.url(server, f"dictation=true&punctuate=true&endpointing={ENDPOINTING_MS}")
        async with websockets.connect(url, max_size=None) as ws:
            if endpoint == "stt-stream":
                linear16 = {"encoding": "linear16", "sample_rate": 16000, "channels": 1}
                configure = {"action": "configure", "audio_format": linear16, "dictation": True}
                await ws.send(json.dumps(configure))  # no endpointing: dictation's default, ENDPOINTING_MS
            started = time.perf_counter()
            for offset in range(0, len(audio), FRAME):
                await ws.send(audio[offset : offset + FRAME])
                delay = (offset + FRAME) / 32000 - (time.perf_counter() - started)
                if delay > 0:
                    await asyncio.sleep(delay)  # a microphone's pace
            await ws.send(STT.stop if endpoint == "stt-stream" else LISTEN.stop)
            async with asyncio.timeout(60):
                async for raw in ws:
                    _collect(json.loads(raw), heard)
    return heard


def _collect(message: dict[str, Any], heard: Heard) -> None:
    assert message["type"] not in ("error", "Error"), message
    if message["type"] == "final_transcript":
        heard.finals.append(message["transcript"])
    elif message["type"] == "interim_transcript":
        heard.interims.append(message["transcript"])
    elif message["type"] == "Results":
        alternative = message["channel"]["alternatives"][0]
        if message["is_final"]:
            heard.finals.append(alternative["transcript"])
            heard.words.extend(alternative["words"])
        else:
            heard.interims.append(alternative["transcript"])


@pytest.mark.parametrize("endpoint", ["stt-stream", "v1-listen"])
async def test_dictated_commands_become_punctuation_and_ordinary_words_stay(
    local_engine_server: ServerThread, endpoint: str
) -> None:
    table = rows()
    gate = asyncio.Semaphore(AT_ONCE)
    results = await asyncio.gather(*(stream(local_engine_server, endpoint, row.file, gate) for row in table))
    report: dict[str, list[int]] = {}  # voice -> [converted, commands]
    for row, heard in zip(table, results, strict=True):
        text = joined(heard.finals)
        if row.kind == "command":
            assert sum(t in MARKS for t in tokens(row.expected)) == row.commands, row  # the reference is sound
            counts = report.setdefault(row.voice, [0, 0])
            counts[0] += converted(row.expected, text)
            if converted(row.expected, text) < row.commands:
                print(f"  {row.file}: {converted(row.expected, text)}/{row.commands} {text!r}")
            counts[1] += row.commands
            if row.file not in KNOWN_MISSES:
                assert command_words(text) == [], (row.file, heard.finals)
        else:  # the same words, said in passing: all of them stay
            assert normalize(text) == normalize(row.spoken) or command_words(text) == command_words(row.spoken), (
                row.file, heard.finals,
            )
            assert command_words(text) == command_words(row.spoken), (row.file, heard.finals)
        if endpoint == "v1-listen":
            _check_words(heard)
    done, total = sum(c for c, _ in report.values()), sum(n for _, n in report.values())
    print(f"\n{endpoint}: converted {done}/{total}", {voice: f"{c}/{n}" for voice, (c, n) in report.items()})
    assert done >= 0.85 * total, (report, [r.finals for r in results])
    # The words, marks aside, against what was said (command words out): the conversion costs no words.
    references = [" ".join(t for t in tokens(row.expected) if t not in MARKS) for row in table]
    error_rate = wer(references, [joined(r.finals) for r in results])
    print(f"{endpoint}: WER {error_rate:.3f} (marks stripped)")
    assert error_rate < 0.12  # measured 0.05-0.07: tiny.en's own mistakes ("Meaching", "by eggs")
    # Interims flow with dictation on. How many clips get one depends on the machine's load (seven streams share
    # one decode worker, and an interim that would come after the final is skipped): 10/28 clips in a loaded CI
    # run, 21-23/28 on a quiet one. So: some, not a share.
    print(f"{endpoint}: interims on {sum(bool(r.interims) for r in results)}/{len(results)} clips")
    assert any(r.interims for r in results), [r.finals for r in results]


def _check_words(heard: Heard) -> None:
    """Deepgram's shape: no word is a mark alone; the transcript is the punctuated words in order."""
    for word in heard.words:
        assert any(c.isalnum() for c in word["punctuated_word"]), word
        assert word["word"] == word["word"].lower() and "\n" not in word["word"], word
    spoken = " ".join(w["punctuated_word"] for w in heard.words).replace("\n ", "\n")
    # A mark that begins a final (the pause before "comma" ended the utterance before it) has no word in that
    # final to carry it: it is in the transcript only (protocol.dictation's module doc). An opening quote is
    # carried by the word after it.
    carried = [LEAD_MARKS.sub("", final) for final in heard.finals]
    assert re.sub(r"\s+", " ", spoken).strip() == re.sub(r"\s+", " ", joined(carried)).strip(), (
        heard.finals, spoken,
    )


async def test_prerecorded_listen_applies_dictation_to_transcript_words_and_paragraphs(
    local_engine_server: ServerThread,
) -> None:
    table = [row for row in rows() if row.file in ("c01_slt.wav", "c08_rms.wav", "c06_awb.wav", "f02_rms.wav")]
    url = local_engine_server.url("/v1/listen").replace("ws://", "http://")
    async with httpx.AsyncClient(timeout=60) as http:
        for row in table:
            body = (CLIPS / row.file).read_bytes()
            query = "dictation=true&punctuate=true&paragraphs=true&utterances=true"
            answer = (await http.post(f"{url}?{query}", content=body)).json()
            alternative = answer["results"]["channels"][0]["alternatives"][0]
            transcript = alternative["transcript"]
            assert "warnings" not in answer["metadata"], answer["metadata"]  # dictation is no longer ignored
            if row.kind == "command":
                assert converted(row.expected, transcript) == row.commands, (row.file, transcript)
                assert command_words(transcript) == [], transcript
                paragraphs = alternative["paragraphs"]["transcript"].strip("\n")  # Deepgram's paragraph breaks
                assert command_words(paragraphs) == [] and converted(row.expected, paragraphs) == row.commands
                assert command_words(" ".join(w["word"] for w in alternative["words"])) == []
            else:
                assert command_words(transcript) == command_words(row.spoken), transcript
            assert all(any(c.isalnum() for c in w["punctuated_word"]) for w in alternative["words"])
        plain = (await http.post(f"{url}?punctuate=true", content=(CLIPS / "c01_slt.wav").read_bytes())).json()
        assert "comma" in plain["results"]["channels"][0]["alternatives"][0]["transcript"].lower()
        refused = await http.post(f"{url}?dictation=true", content=(CLIPS / "c01_slt.wav").read_bytes())
        assert refused.status_code == 400 and "requires punctuate=true" in refused.json()["err_msg"]
