"""Real-browser end-to-end tests of the web UI served by `voxrelay serve`.

Headless Debian Chromium's fake microphone plays a corpus clip (padded with
silence) into the page at `/`; the page streams it to the same origin's
`/stt-stream`, where the local engine transcribes it. The tests click the mic
like a person, and judge the textarea by word error rate.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import jiwer
import pytest

from tests.support import clip as corpus_clip
from tests.support import normalize

from .conftest import TEST_API_KEY, Gateway, padded_wav

pytestmark = pytest.mark.e2e

expect: Any
try:
    from playwright.sync_api import expect
except ModuleNotFoundError:  # pragma: no cover - the conftest skips these tests then
    expect = None

PAD_BEFORE_S = 1.0
PAD_AFTER_S = 2.0
MAX_WER = 0.2
TYPED = "Note:"

# Sets `window.__authChecked` one task after the app read its `GET /v1/auth` answer: by then the
# key form, if the app decided to ask, is rendered (its state updates in that answer's promise chain).
AUTH_CHECKED = """
window.__authChecked = false;
(() => {
  const json = Response.prototype.json;
  Response.prototype.json = function () {
    const read = json.call(this);
    if (new URL(this.url).pathname === '/v1/auth') {
      read.then(() => setTimeout(() => { window.__authChecked = true; }, 0), () => {});
    }
    return read;
  };
})();
"""

# Records every data-state the mic button goes through and the highest input level
# the level meter (the "Microphone level" meter next to the mic) showed, from page load on.
WATCH_MIC = """
window.__vox = { states: [], maxLevel: 0 };
(() => {
  const watch = () => {
    const mic = document.querySelector('button[data-state]');
    if (!mic) return false;
    const push = () => {
      const s = mic.getAttribute('data-state');
      const states = window.__vox.states;
      if (states[states.length - 1] !== s) states.push(s);
    };
    push();
    new MutationObserver(push).observe(mic, { attributes: true, attributeFilter: ['data-state'] });
    const meter = document.querySelector('[role="meter"][data-level]') || mic.querySelector('[data-level]');
    if (meter) {
      new MutationObserver(() => {
        const level = parseFloat(meter.getAttribute('data-level') || '0');
        if (level > window.__vox.maxLevel) window.__vox.maxLevel = level;
      }).observe(meter, { attributes: true, attributeFilter: ['data-level'] });
    }
    return true;
  };
  const start = () => {
    if (!watch()) {
      const observer = new MutationObserver(() => { if (watch()) observer.disconnect(); });
      observer.observe(document.documentElement, { childList: true, subtree: true });
    }
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
"""


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalize(reference), normalize(hypothesis) or "<empty>"))


class SocketLog:
    """What the page sent on its `/stt-stream` WebSockets (via Playwright's frame events)."""

    def __init__(self, page: Any) -> None:
        self.text: list[dict[str, Any]] = []
        self.binary: list[int] = []
        self.received: list[dict[str, Any]] = []
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws: Any) -> None:
        if not ws.url.endswith("/stt-stream"):
            return
        ws.on("framesent", self._sent)
        ws.on("framereceived", self._received)

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.text.append(json.loads(payload))
        else:
            self.binary.append(len(payload))

    def _received(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.received.append(json.loads(payload))


def open_ui(context: Any, url: str) -> tuple[Any, list[str], SocketLog]:
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    page.add_init_script(WATCH_MIC)
    sockets = SocketLog(page)
    page.goto(url)
    return page, console, sockets


def dictate_clip(
    launch_chromium: Any, gateway: Gateway, tmp_path: Path, clip_name: str, query: str = ""
) -> tuple[str, str, dict[str, Any], SocketLog, list[str]]:
    """Type TYPED, dictate the clip through the fake mic, stop; returns (value, reference, watch, sockets, console)."""
    clip = corpus_clip(clip_name)
    audio = tmp_path / f"padded-{clip_name}"
    duration = padded_wav(clip.path, audio, PAD_BEFORE_S, PAD_AFTER_S)
    context = launch_chromium(audio)
    page, console, sockets = open_ui(context, f"{gateway.url}/{query}")

    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)
    expect(page.locator("button[data-state]")).to_have_attribute("data-state", "idle")
    value = speak_clip(page, duration)
    watch = page.evaluate("window.__vox")
    return value, clip.reference, watch, sockets, console


def speak_clip(page: Any, duration: float) -> str:
    """Type TYPED, press the mic, let the fake mic play the clip, press stop; returns the textarea's value."""
    mic = page.locator("button[data-state]")
    textarea = page.get_by_role("textbox", name="Message")
    textarea.fill(TYPED)

    clicked = time.monotonic()
    page.get_by_role("button", name="Start dictation").click()
    expect(mic).to_have_attribute("data-state", "recording", timeout=15_000)
    expect(page.get_by_role("button", name="Stop dictation")).to_be_visible()
    # Live text appears while recording (interims or finals), after what was typed.
    page.wait_for_function(
        "([typed]) => { const t = document.querySelector('textarea'); return t.value.length > typed.length + 3 }",
        arg=[TYPED],
        timeout=(PAD_BEFORE_S + duration + 15) * 1000,
    )
    # The clip must have played out before stopping; that wait is inherently time-based.
    # The trailing silence (PAD_AFTER_S) keeps the looping fake mic quiet meanwhile.
    remaining = clicked + PAD_BEFORE_S + duration + 0.8 - time.monotonic()
    if remaining > 0:
        page.wait_for_timeout(remaining * 1000)
    page.get_by_role("button", name="Stop dictation").click()
    expect(mic).to_have_attribute("data-state", "idle", timeout=30_000)
    return str(textarea.input_value())


def collapsed(states: list[str]) -> list[str]:
    """The state sequence without the transitional `connecting` (opening and finishing)."""
    out: list[str] = []
    for state in states:
        if state != "connecting" and (not out or out[-1] != state):
            out.append(state)
    return out


def test_dictation_pcm_transcribes_the_clip_and_keeps_typed_text(
    launch_chromium: Any, gateway: Gateway, tmp_path: Path
) -> None:
    value, reference, watch, sockets, console = dictate_clip(
        launch_chromium, gateway, tmp_path, "s03_question_weather.wav"
    )
    context = f"\ntextarea={value!r}\nconsole={console}\ngateway log:\n{gateway.log_tail()}"

    assert value.startswith(TYPED), "text typed before dictation was lost" + context
    dictated = value[len(TYPED) :]
    assert wer(reference, dictated) <= MAX_WER, f"WER too high for {dictated!r} vs {reference!r}" + context

    assert collapsed(watch["states"]) == ["idle", "recording", "idle"], watch["states"]
    assert watch["maxLevel"] > 0.005, "the fake microphone was silent" + context

    # The wire: configure first (linear16 16 kHz mono), ~50 ms binary frames, then stop; `stopped` came back.
    assert sockets.text[0]["action"] == "configure", sockets.text
    assert sockets.text[0]["audio_format"] == {"encoding": "linear16", "sample_rate": 16000, "channels": 1}
    assert sockets.text[-1] == {"action": "stop"}
    frames = sockets.binary[:-1]  # the last one is the flushed partial frame
    assert frames and all(size == 1600 for size in frames), sorted(set(sockets.binary))
    assert {"type": "stopped"} in sockets.received
    assert any(m["type"] == "interim_transcript" for m in sockets.received), "no live interim results"


def test_dictation_webm_opus_transcribes_too(launch_chromium: Any, gateway: Gateway, tmp_path: Path) -> None:
    value, reference, watch, sockets, console = dictate_clip(
        launch_chromium, gateway, tmp_path, "s14_question_distance.wav", query="?audio=webm"
    )
    context = f"\ntextarea={value!r}\nconsole={console}\ngateway log:\n{gateway.log_tail()}"

    assert sockets.text[0]["action"] == "configure", sockets.text
    assert sockets.text[0]["audio_format"] == {"encoding": "webm"}, sockets.text[0]
    # Chromium does not report frames sent from a Blob (MediaRecorder's chunks) to the
    # DevTools protocol, so the server's answers stand for the audio here.
    assert any(m["type"] == "final_transcript" for m in sockets.received), sockets.received
    assert {"type": "stopped"} in sockets.received
    assert value.startswith(TYPED), "text typed before dictation was lost" + context
    dictated = value[len(TYPED) :]
    assert wer(reference, dictated) <= MAX_WER, f"WER too high for {dictated!r} vs {reference!r}" + context
    assert collapsed(watch["states"]) == ["idle", "recording", "idle"], watch["states"]


def test_gateway_stopped_shows_an_error_and_never_records(
    launch_chromium: Any, start_gateway: Any, tmp_path: Path
) -> None:
    clip = corpus_clip("s01_command_lights.wav")
    audio = tmp_path / "padded.wav"
    padded_wav(clip.path, audio)
    gateway = start_gateway()
    context = launch_chromium(audio)
    page, console, _ = open_ui(context, gateway.url + "/")
    mic = page.locator("button[data-state]")
    textarea = page.get_by_role("textbox", name="Message")
    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)
    textarea.fill("kept")

    gateway.stop()
    page.get_by_role("button", name="Start dictation").click()

    alert = page.get_by_role("alert")
    expect(alert).to_be_visible(timeout=15_000)
    expect(alert).to_contain_text("Could not connect to the dictation gateway")
    expect(mic).to_have_attribute("data-state", "error")
    expect(mic).to_have_attribute("aria-label", "Start dictation")
    states = page.evaluate("window.__vox.states")
    assert "recording" not in states, states
    assert textarea.input_value() == "kept"
    # The failure triggers a health re-check: the mic is then disabled with an explanation.
    expect(mic).to_be_disabled(timeout=15_000)
    assert "unavailable" in (mic.get_attribute("title") or ""), console


def test_auth_on_asks_for_the_key_once_refuses_a_wrong_one_and_dictates_with_tokens(
    launch_chromium: Any, auth_gateway: Gateway, tmp_path: Path
) -> None:
    """Keys configured: the page asks for the gateway key, a wrong key is refused before the
    microphone opens, the right one mints a single-use token per connect, and neither the
    key nor a token reaches the gateway's log (or a URL)."""
    gateway = auth_gateway
    with urllib.request.urlopen(f"{gateway.url}/v1/auth", timeout=5) as response:
        assert json.load(response)["auth_required"] is True

    clip = corpus_clip("s03_question_weather.wav")
    audio = tmp_path / "padded-auth.wav"
    duration = padded_wav(clip.path, audio, PAD_BEFORE_S, PAD_AFTER_S)
    context = launch_chromium(audio)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.add_init_script(WATCH_MIC)
    mints: list[Any] = []
    page.on("response", lambda r: mints.append(r) if r.url.endswith("/v1/auth/token") else None)
    socket_urls: list[str] = []
    page.on("websocket", lambda ws: socket_urls.append(ws.url))
    sockets = SocketLog(page)
    page.goto(f"{gateway.url}/")

    mic = page.locator("button[data-state]")
    key_input = page.get_by_label("Gateway key", exact=True)
    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)
    # The key form appears on load, with a password input.
    expect(key_input).to_be_visible(timeout=15_000)
    assert key_input.get_attribute("type") == "password"

    # A wrong key: the clear error, the mic in `error`, never recording, no socket, asked again.
    wrong = "vxk_wrong_" + TEST_API_KEY[-8:]
    key_input.fill(wrong)
    page.get_by_role("button", name="Use key").click()
    expect(key_input).to_be_hidden()
    page.get_by_role("button", name="Start dictation").click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible(timeout=15_000)
    expect(alert).to_contain_text("The gateway key was refused")
    expect(mic).to_have_attribute("data-state", "error")
    assert "recording" not in page.evaluate("window.__vox.states")
    assert socket_urls == []
    assert [m.status for m in mints] == [401]
    assert page.evaluate("sessionStorage.getItem('voxrelay.gatewayKey')") is None
    expect(key_input).to_be_visible()
    expect(page.get_by_role("form", name="Gateway access")).to_contain_text("That key was refused")

    # The right key: kept for the tab, and the clip is transcribed.
    key_input.fill(TEST_API_KEY)
    key_input.press("Enter")
    expect(key_input).to_be_hidden()
    value = speak_clip(page, duration)
    details = f"\ntextarea={value!r}\nconsole={console}\ngateway log:\n{gateway.log_tail()}"
    assert value.startswith(TYPED), "text typed before dictation was lost" + details
    dictated = value[len(TYPED) :]
    assert wer(clip.reference, dictated) <= MAX_WER, f"WER too high for {dictated!r} vs {clip.reference!r}" + details
    assert {"type": "stopped"} in sockets.received
    assert page.evaluate("sessionStorage.getItem('voxrelay.gatewayKey')") == TEST_API_KEY

    # One token per connect, offered as a subprotocol only: never in a URL.
    assert [m.status for m in mints] == [401, 200]
    minted = mints[1].json()
    assert minted["subprotocol"] == "bearer" and minted["expires_in"] <= 60
    token = minted["token"]
    assert socket_urls and all(url.endswith("/stt-stream") for url in socket_urls), socket_urls
    assert all(token not in url and TEST_API_KEY not in url for url in socket_urls)

    # Once per tab: a reload keeps the key (no form) until the tab closes.
    page.add_init_script(AUTH_CHECKED)
    page.reload()
    expect(page.get_by_role("button", name="Start dictation")).to_be_enabled(timeout=15_000)
    # The form would open right after the app's GET /v1/auth is read: wait for that, then check it stayed shut.
    page.wait_for_function("window.__authChecked === true", timeout=15_000)
    expect(page.get_by_label("Gateway key", exact=True)).to_have_count(0)

    log = gateway.log_path.read_text(errors="replace")
    for secret in (TEST_API_KEY, wrong, token):
        assert secret not in log, f"{secret[:8]}… appears in the gateway log"
