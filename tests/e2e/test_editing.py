"""Real-browser tests of dictation that edits like a person expects (issue 14 §3).

Headless Debian Chromium's fake microphone plays a corpus clip into the web UI served by
`voxrelay serve` (local engine). The tests put the caret or a selection in the message box,
move the caret and type while the words arrive, use the keyboard shortcut, and read what
the page tells people: the level meter, the polite status line (start/stop, server
warnings) and the alert. Dictated parts are judged by word error rate, typed parts exactly.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support import clip as corpus_clip

from .conftest import Gateway, padded_wav
from .test_browser import MAX_WER, PAD_AFTER_S, PAD_BEFORE_S, expect, open_ui, wer

pytestmark = pytest.mark.e2e

# Records the server's finals (and whether they end an utterance) and warnings as the page
# receives them, by wrapping the WebSocket class the client looks up when a dictation starts.
WATCH_SOCKET = """
window.__stt = { finals: [], speechFinals: 0, warnings: [] };
(() => {
  const Native = window.WebSocket;
  class Watched extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (event) => {
        if (typeof event.data !== 'string') return;
        let m;
        try { m = JSON.parse(event.data); } catch { return; }
        if (m.type === 'final_transcript') {
          window.__stt.finals.push(m.transcript);
          if (m.speech_final) window.__stt.speechFinals += 1;
        } else if (m.type === 'warning') {
          window.__stt.warnings.push(m.code);
        }
      });
    }
  }
  window.WebSocket = Watched;
})();
"""

# True once the first utterance's final is in the page and shown in the message box
# (the box shows it once React rendered: its last word is in the value).
FIRST_UTTERANCE_SHOWN = """
() => {
  if (window.__stt.speechFinals < 1) return false;
  const words = window.__stt.finals.join(' ').toLowerCase().match(/[a-z']+/g) || [];
  const last = words[words.length - 1];
  return !!last && document.querySelector('textarea').value.toLowerCase().includes(last);
}
"""


class Page:
    """The web UI with a fake microphone playing `clip_name`."""

    def __init__(self, launch_chromium: Any, gateway: Gateway, tmp_path: Path, clip_name: str) -> None:
        clip = corpus_clip(clip_name)
        audio = tmp_path / f"padded-{clip_name}"
        self.duration = padded_wav(clip.path, audio, PAD_BEFORE_S, PAD_AFTER_S)
        self.reference = clip.reference
        self.gateway = gateway
        context = launch_chromium(audio)
        context.add_init_script(WATCH_SOCKET)
        self.page, self.console, self.sockets = open_ui(context, gateway.url + "/")
        self.mic = self.page.locator("button[data-state]")
        self.textarea = self.page.get_by_role("textbox", name="Message")
        self.started_at = 0.0
        expect(self.page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self.page.get_by_role("button", name="Start dictation").click()
        expect(self.mic).to_have_attribute("data-state", "recording", timeout=15_000)

    def wait_first_utterance(self) -> None:
        self.page.wait_for_function(FIRST_UTTERANCE_SHOWN, timeout=(PAD_BEFORE_S + self.duration + 15) * 1000)

    def wait_clip_played(self) -> None:
        # The clip must have played out before stopping; that wait is inherently time-based.
        remaining = self.started_at + PAD_BEFORE_S + self.duration + 0.8 - time.monotonic()
        if remaining > 0:
            self.page.wait_for_timeout(remaining * 1000)

    def stop(self) -> str:
        self.page.get_by_role("button", name="Stop dictation").click()
        expect(self.mic).to_have_attribute("data-state", "idle", timeout=30_000)
        return str(self.textarea.input_value())

    def details(self, value: str) -> str:
        finals = self.page.evaluate("window.__stt.finals")
        return f"\ntextarea={value!r}\nfinals={finals}\nconsole={self.console}\ngateway log:\n{self.gateway.log_tail()}"


def caret(textarea: Any) -> list[int]:
    return list(textarea.evaluate("t => [t.selectionStart, t.selectionEnd]"))


def test_dictation_goes_in_at_the_caret_with_spaces_on_both_sides(
    launch_chromium: Any, gateway: Gateway, tmp_path: Path
) -> None:
    ui = Page(launch_chromium, gateway, tmp_path, "s03_question_weather.wav")
    before, after = "Question:", "thanks."
    ui.textarea.fill(before + after)
    ui.textarea.evaluate("(t, at) => t.setSelectionRange(at, at)", len(before))

    ui.start()
    ui.wait_clip_played()
    value = ui.stop()
    details = ui.details(value)

    # The typed parts are exact; a space on each side (":" before, a letter after).
    assert value.startswith(before + " "), "the text before the caret changed" + details
    assert value.endswith(" " + after), "the text after the caret changed" + details
    inserted = value[len(before) + 1 : -len(after) - 1]
    assert inserted.strip() == inserted and inserted, details
    assert wer(ui.reference, inserted) <= MAX_WER, f"WER too high for {inserted!r} vs {ui.reference!r}" + details
    # The caret ends after the inserted text.
    end = len(before) + 1 + len(inserted)
    assert caret(ui.textarea) == [end, end], details


def test_dictation_replaces_the_selection(launch_chromium: Any, gateway: Gateway, tmp_path: Path) -> None:
    # Not s01 ("Turn on the kitchen lights."): where the fake mic's loop starts moves the segment's start, and
    # tiny.en then hears "Part on" or "Pardon". Streamed at 40 leads of 0.3-1.3 s: 17 streams wrong, 2 of them by
    # two words, with today's finals (17 and 0 with the old beam-2 ones, 4 and 0 with 30 s windows, which cost
    # the corpus words: docs/benchmarks.md); a 5-word clip's one-word bound cannot absorb that. s02: right at all 40.
    ui = Page(launch_chromium, gateway, tmp_path, "s02_command_timer.wav")
    head, word, tail = "Please ", "PLACEHOLDER", " now"
    ui.textarea.fill(head + word + tail)
    ui.textarea.evaluate("(t, r) => t.setSelectionRange(r[0], r[1])", [len(head), len(head + word)])

    ui.start()
    ui.wait_clip_played()
    value = ui.stop()
    details = ui.details(value)

    assert word not in value, "the selection was not replaced" + details
    assert value.startswith(head), details
    assert value.endswith(tail), details
    inserted = value[len(head) : -len(tail)]
    assert wer(ui.reference, inserted) <= MAX_WER, f"WER too high for {inserted!r} vs {ui.reference!r}" + details


def finals_count(page: Any) -> int:
    return int(page.evaluate("window.__stt.finals.length"))


def test_moving_the_caret_during_dictation_moves_the_following_finals(
    launch_chromium: Any, gateway: Gateway, tmp_path: Path
) -> None:
    """Two utterances with a pause: after the first one's final, the caret goes to the start of
    the box (Ctrl+Home); what is dictated from then on lands there, before the typed text."""
    ui = Page(launch_chromium, gateway, tmp_path, "s13_pause_letter.wav")
    typed = "Intro."
    ui.textarea.fill(typed)

    ui.start()
    ui.wait_first_utterance()
    first_value = ui.textarea.input_value()
    n = finals_count(ui.page)
    ui.textarea.press("Control+Home")
    assert finals_count(ui.page) == n, "a final arrived while the caret moved: where it belongs is unknown"
    ui.wait_clip_played()
    value = ui.stop()
    finals = ui.page.evaluate("window.__stt.finals")
    details = ui.details(value) + f"\nbefore the caret moved: {first_value!r} ({n} finals)"

    assert first_value.startswith(typed + " "), details
    assert len(finals) > n, "nothing was dictated after the caret moved" + details
    at = value.find(" " + typed + " ")
    assert at > 0 and value.count(typed) == 1, "the typed text is not between the two parts" + details
    moved, stayed = value[:at], value[at + len(typed) + 2 :]
    # What came before the move stayed after the typed text; the rest went to the new caret.
    assert wer(" ".join(finals[:n]), stayed) <= MAX_WER, f"{stayed!r} vs finals {finals[:n]}" + details
    assert wer(" ".join(finals[n:]), moved) <= MAX_WER, f"{moved!r} vs finals {finals[n:]}" + details
    # And the words are right, in the order spoken (the two parts match the reference better than swapped).
    spoken, swapped = stayed + " " + moved, moved + " " + stayed
    assert wer(ui.reference, spoken) <= MAX_WER, f"WER too high for {spoken!r} vs {ui.reference!r}" + details
    assert wer(ui.reference, spoken) < wer(ui.reference, swapped), "the parts are not in spoken order" + details
    # The caret followed the last dictated words.
    assert caret(ui.textarea) == [len(moved), len(moved)], details


def test_text_typed_during_dictation_is_kept(launch_chromium: Any, gateway: Gateway, tmp_path: Path) -> None:
    """After the first utterance's final, the person types at the end of the box (the interim of
    the next words may already show): the typed text stays exactly, and what is dictated
    afterwards follows it."""
    ui = Page(launch_chromium, gateway, tmp_path, "s13_pause_letter.wav")
    typed, during = "Note:", "(typed meanwhile)"
    ui.textarea.fill(typed)

    ui.start()
    ui.wait_first_utterance()
    n = finals_count(ui.page)
    ui.textarea.press("Control+End")
    ui.textarea.press_sequentially(" " + during)
    ui.page.wait_for_function(
        "(typed) => document.querySelector('textarea').value.includes(typed)", arg=during, timeout=5_000
    )
    assert finals_count(ui.page) == n, "a final arrived while typing: where it belongs is unknown"
    ui.wait_clip_played()
    value = ui.stop()
    finals = ui.page.evaluate("window.__stt.finals")
    details = ui.details(value) + f"\n({n} finals before typing)"

    assert value.startswith(typed + " "), details
    assert value.count(during) == 1, "the text typed during dictation was lost or doubled" + details
    assert len(finals) > n, "nothing was dictated after the typing" + details
    at = value.index(during)
    before, after = value[len(typed) : at], value[at + len(during) :]
    assert wer(" ".join(finals[:n]), before) <= MAX_WER, f"{before!r} vs finals {finals[:n]}" + details
    assert wer(" ".join(finals[n:]), after) <= MAX_WER, f"{after!r} vs finals {finals[n:]}" + details
    spoken = before + " " + after
    assert wer(ui.reference, spoken) <= MAX_WER, f"WER too high for {spoken!r} vs {ui.reference!r}" + details


def test_shortcut_starts_and_stops_with_focus_kept_announced_with_a_level_meter(
    launch_chromium: Any, gateway: Gateway, tmp_path: Path
) -> None:
    ui = Page(launch_chromium, gateway, tmp_path, "s03_question_weather.wav")
    page = ui.page
    status = page.locator("[role=status][aria-live=polite]").filter(has_text="Dictation")
    button = page.get_by_role("button", name="Start dictation")
    expect(button).to_have_attribute("aria-keyshortcuts", "Control+Shift+Space")
    expect(button).to_have_attribute("title", "Start dictation (Ctrl+Shift+Space)")
    meter = page.get_by_role("meter", name="Microphone level")
    expect(meter).to_have_count(0)  # hidden while not recording

    typed = "Weather:"
    ui.textarea.fill(typed)
    expect(ui.textarea).to_be_focused()
    ui.started_at = time.monotonic()
    page.keyboard.press("Control+Shift+Space")
    expect(ui.mic).to_have_attribute("data-state", "recording", timeout=15_000)
    expect(ui.textarea).to_be_focused()
    expect(status).to_have_text("Dictation started.")

    # The meter: named, 0..100, not focusable, and it moves with the voice.
    expect(meter).to_be_visible()
    expect(meter).to_have_attribute("aria-valuemin", "0")
    expect(meter).to_have_attribute("aria-valuemax", "100")
    assert meter.evaluate("m => m.tabIndex") == -1
    page.wait_for_function(
        "() => Number(document.querySelector('[role=meter]').getAttribute('aria-valuenow')) > 0",
        timeout=(PAD_BEFORE_S + ui.duration + 10) * 1000,
    )

    ui.wait_clip_played()
    page.keyboard.press("Control+Shift+Space")
    expect(ui.mic).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(ui.textarea).to_be_focused()
    expect(status).to_have_text("Dictation stopped.")
    expect(meter).to_have_count(0)

    value = ui.textarea.input_value()
    details = ui.details(value)
    # The shortcut typed nothing (no space from Space), and the dictation went in after the text.
    assert value.startswith(typed + " "), details
    dictated = value[len(typed) :]
    assert wer(ui.reference, dictated) <= MAX_WER, f"WER too high for {dictated!r} vs {ui.reference!r}" + details


def test_server_warning_is_shown_and_an_error_is_announced(
    launch_chromium: Any, start_gateway: Any, tmp_path: Path
) -> None:
    """A drain (`POST /admin/drain` from loopback) warns the live session: the status line says
    so, politely. The drained gateway then exits: the next start fails with an alert."""
    gateway = start_gateway()
    ui = Page(launch_chromium, gateway, tmp_path, "s11_long_paragraph.wav")
    page = ui.page
    ui.textarea.fill("Draft:")
    ui.start()
    # Some words first, so that the drain has a live session with audio to finish.
    page.wait_for_function(
        "() => document.querySelector('textarea').value.length > 'Draft:'.length + 3",
        timeout=(PAD_BEFORE_S + 20) * 1000,
    )
    request = urllib.request.Request(f"{gateway.url}/admin/drain", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["status"] == "draining"

    warning = page.locator("[role=status][data-warning=draining]")
    expect(warning).to_have_attribute("aria-live", "polite")
    expect(warning).to_contain_text("shutting down", timeout=15_000)
    assert "draining" in page.evaluate("window.__stt.warnings")
    # The session ends gracefully: the words so far stay, and the end is announced.
    expect(ui.mic).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(warning).to_contain_text("Dictation stopped.")
    value = ui.textarea.input_value()
    assert value.startswith("Draft: ") and len(value) > len("Draft: ") + 3, ui.details(value)
    assert page.get_by_role("alert").count() == 0, page.get_by_role("alert").all_inner_texts()

    # The drained gateway exits; a new start fails, and the failure is an alert.
    gateway.process.wait(timeout=60)
    ui.textarea.focus()
    page.keyboard.press("Control+Shift+Space")
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible(timeout=15_000)
    expect(alert).to_contain_text("Could not connect to the dictation gateway")
    expect(page.locator("[role=status][aria-live=polite]").filter(has_text="Dictation started.")).to_have_count(0)
    expect(ui.textarea).to_be_focused()
    assert ui.textarea.input_value() == value
