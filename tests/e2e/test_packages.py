"""The npm packages as another app gets them: packed tarballs, a fresh Vite + React app, real Chromium.

`npm pack` runs in each package's folder (its `prepack` builds dist/ from scratch), the
tarballs' contents are checked, and a new app written to a temporary folder installs
them next to react/react-dom/vite/@vitejs/plugin-react (the lockfile's versions, from the
npm cache when there), type-checks against their declarations and builds twice: with
Vite's defaults, and with a strict Content-Security-Policy (`script-src 'self'`) plus
the README's setting that keeps the capture worklet a file. A static server on loopback
serves both under the name `app.test`, another origin than the gateway's, which a real
`voxrelay serve` (local engine) admits only through `VOXRELAY_ALLOWED_ORIGINS` (the name
is not loopback, so the loopback allowance does not apply; `other.test`, not in the
list, is refused). Headless Chromium's fake microphone plays a corpus clip; the
app's text is judged by word error rate.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import clip as corpus_clip

from .conftest import CHROMIUM, CHROMIUM_ARGS, ROOT, Gateway, padded_wav, spawn_gateway
from .test_browser import MAX_WER, PAD_AFTER_S, PAD_BEFORE_S, WATCH_MIC, SocketLog, wer

pytestmark = pytest.mark.e2e

expect: Any
try:
    from playwright.sync_api import expect
except ModuleNotFoundError:  # pragma: no cover - the conftest skips these tests then
    expect = None

FRONTEND = ROOT / "frontend"
PACKAGES = {"client": FRONTEND / "packages" / "client", "react": FRONTEND / "packages" / "react"}
APP_HOST = "app.test"  # the fresh app's origin (allowed by the gateway)
OTHER_HOST = "other.test"  # an origin the gateway does not list
# The fresh app's own dependencies, at the versions voxrelay's lockfile already has (so in the npm cache).
APP_DEPENDENCIES = ["react", "react-dom"]
APP_DEV_DEPENDENCIES = ["vite", "@vitejs/plugin-react", "typescript", "@types/react", "@types/react-dom"]
NPM_ENV = {
    "npm_config_fund": "false",
    "npm_config_audit": "false",
    "npm_config_update_notifier": "false",
    "npm_config_loglevel": "error",
    "ELECTRON_SKIP_BINARY_DOWNLOAD": "1",
}


def run(command: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **NPM_ENV, **(env or {})}
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} (in {cwd}) failed with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


# The fresh app: what a person following the packages' READMEs would write.
APP_MAIN = """\
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { gatewayUrls, type CaptureMode } from '@voxrelay/client'
import { DictationButton, useSpeechToText } from '@voxrelay/react'

const params = new URLSearchParams(location.search)
const { stream } = gatewayUrls(params.get('gateway') ?? 'http://127.0.0.1:8765')
const mode: CaptureMode = params.get('mode') === 'webm' ? 'webm' : 'linear16'

function App() {
  const stt = useSpeechToText({ url: stream, mode })
  return (
    <main>
      <DictationButton stt={stt} />
      <p id="final">{stt.final}</p>
      <p id="interim">{stt.interim}</p>
      {stt.error && <p role="alert">{stt.error}</p>}
    </main>
  )
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
)
"""

APP_HTML = """\
<!doctype html>
<html lang="en">
  <head><meta charset="UTF-8" /><title>packages e2e</title></head>
  <body><div id="root"></div><script type="module" src="./src/main.tsx"></script></body>
</html>
"""

# APP_CSP set: a strict policy in the page, and the README's setting that keeps the worklet a file.
APP_VITE_CONFIG = """\
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

const csp = process.env.APP_CSP
const cspMeta = {
  name: 'csp-meta',
  transformIndexHtml: (html) => html.replace('<head>', `<head><meta http-equiv="Content-Security-Policy" content="${csp}" />`),
}

export default defineConfig({
  base: './',
  plugins: csp ? [react(), cspMeta] : [react()],
  build: csp ? { assetsInlineLimit: (file) => (file.endsWith('pcm-worklet.js') ? false : undefined) } : {},
})
"""

APP_TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "lib": ["ES2023", "DOM", "DOM.Iterable"],
        "module": "ESNext",
        "moduleResolution": "bundler",
        "jsx": "react-jsx",
        "strict": True,
        "noEmit": True,
        "isolatedModules": True,
        "types": [],
    },
    "include": ["src"],
}


@pytest.fixture(scope="module")
def tarballs(web_ui: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`npm pack` in each package's folder (after the workspace's `npm ci`, done by build-web.sh)."""
    if not shutil.which("npm"):
        pytest.fail("npm is needed to pack @voxrelay/client and @voxrelay/react")
    out = tmp_path_factory.mktemp("tarballs")
    packed: dict[str, Path] = {}
    for name, folder in PACKAGES.items():
        # No dist/ beforehand: the tarball's build must come from the package's own prepack.
        shutil.rmtree(folder / "dist", ignore_errors=True)
        run(["npm", "pack", "--pack-destination", str(out)], cwd=folder)
        found = sorted(out.glob(f"voxrelay-{name}-*.tgz"))
        assert len(found) == 1, f"npm pack left {found} for {name}"
        packed[name] = found[0]
    return packed


def tar_files(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def test_packed_tarballs_hold_the_build_and_declarations_only(tarballs: dict[str, Path]) -> None:
    for name, tarball in tarballs.items():
        files = tar_files(tarball)
        names = sorted(files)
        assert all(n.startswith("package/") for n in names), names
        required = {"package/package.json", "package/README.md", "package/dist/index.js", "package/dist/index.d.ts"}
        if name == "client":
            required.add("package/dist/pcm-worklet.js")
        assert required <= set(names), f"{name}: missing {required - set(names)} in {names}"
        # No tests, sources, configs or test doubles: only the build, the README and package.json.
        for n in names:
            assert not re.search(r"\.test\.|/test/|/src/|tsconfig|tsup\.config|\.tsx?$(?<!\.d\.ts)", n), f"{name}: {n}"
        # Source maps, if any, must point inside the package.
        for n in names:
            if not n.endswith(".js"):
                continue
            for ref in re.findall(rb"sourceMappingURL=(\S+)", files[n]):
                target = os.path.normpath(os.path.join(os.path.dirname(n), ref.decode()))
                assert target in files, f"{n} points to a source map that is not packed: {ref!r}"
                for source in json.loads(files[target]).get("sources", []):
                    resolved = os.path.normpath(os.path.join(os.path.dirname(target), source))
                    assert resolved.startswith("package/"), f"{target} points outside the package: {source}"
        manifest = json.loads(files["package/package.json"])
        assert manifest["type"] == "module"
        root_export = manifest["exports"]["."]
        for key in ("types", "import"):
            assert f"package/{os.path.normpath(root_export[key])}" in files, (key, root_export)
        assert f"package/{os.path.normpath(manifest['types'])}" in files
        for deps in ("dependencies", "peerDependencies"):
            for dep, spec in manifest.get(deps, {}).items():
                assert not spec.startswith(("file:", "workspace:", "link:")), f"{name}: {dep}@{spec}"
        if name == "client":
            assert manifest["exports"]["./pcm-worklet.js"] == "./dist/pcm-worklet.js", manifest["exports"]
            index = files["package/dist/index.js"].decode()
            assert 'new URL("./pcm-worklet.js", import.meta.url)' in index
            assert b"registerProcessor" in files["package/dist/pcm-worklet.js"]
            assert "from 'react'" not in index and 'from "react"' not in index, "the client must not need React"
        else:
            assert manifest["peerDependencies"]["react"], manifest
            assert "react" not in manifest.get("dependencies", {}), "react must be a peer, not a dependency"
            assert (
                manifest["dependencies"]["@voxrelay/client"]
                == json.loads(tar_files(tarballs["client"])["package/package.json"])["version"]
            )
            declarations = files["package/dist/index.d.ts"].decode()
            assert "useSpeechToText" in declarations and "DictationButton" in declarations
            # The client's types are imported from the package, not copied or pointed at by path.
            assert "from '@voxrelay/client'" in declarations
            assert "../" not in declarations


def lock_versions(names: list[str]) -> dict[str, str]:
    lock = json.loads((FRONTEND / "package-lock.json").read_text())["packages"]
    return {name: lock[f"node_modules/{name}"]["version"] for name in names}


@pytest.fixture(scope="module")
def fresh_app(tarballs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new Vite + React app that installs the two tarballs, type-checks and builds: dist/default, dist/strict."""
    app = tmp_path_factory.mktemp("fresh-app")
    manifest = {
        "name": "voxrelay-packages-e2e",
        "private": True,
        "type": "module",
        "dependencies": {
            "@voxrelay/client": f"file:{tarballs['client']}",
            "@voxrelay/react": f"file:{tarballs['react']}",
            **lock_versions(APP_DEPENDENCIES),
        },
        "devDependencies": lock_versions(APP_DEV_DEPENDENCIES),
    }
    (app / "package.json").write_text(json.dumps(manifest, indent=2))
    (app / "index.html").write_text(APP_HTML)
    (app / "vite.config.js").write_text(APP_VITE_CONFIG)
    (app / "tsconfig.json").write_text(json.dumps(APP_TSCONFIG, indent=2))
    (app / "src").mkdir()
    (app / "src" / "main.tsx").write_text(APP_MAIN)
    run(["npm", "install", "--prefer-offline", "--no-package-lock"], cwd=app, timeout=600)

    # Installed from the tarballs (not the registry, not a link), once: react's dependency is the packed client.
    for name in ("client", "react"):
        installed = app / "node_modules" / "@voxrelay" / name
        assert installed.is_dir() and not installed.is_symlink(), installed
        assert (installed / "dist" / "index.d.ts").is_file()
    assert not (app / "node_modules" / "@voxrelay" / "react" / "node_modules").exists()

    run([str(app / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=app)
    return app


def build_app(app: Path, out: str, csp: str | None = None) -> Path:
    env = {"APP_CSP": csp} if csp else {}
    run(
        [str(app / "node_modules" / ".bin" / "vite"), "build", "--outDir", f"dist/{out}", "--logLevel", "warn"],
        cwd=app,
        env=env,
    )
    return app / "dist" / out


SERVED: list[tuple[str, int]] = []  # (path, status) of every request the static server answered


class RecordingHandler(SimpleHTTPRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        SERVED.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A static file server on loopback (port, root); the app's builds are copied under root."""
    root = tmp_path_factory.mktemp("static")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RecordingHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], root
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def origin_gateway(
    web_ui: Path, static_server: tuple[int, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway whose VOXRELAY_ALLOWED_ORIGINS lists the fresh app's origin (and not other.test)."""
    port, _ = static_server
    gw = spawn_gateway(
        web_ui,
        tmp_path_factory.mktemp("packages-gateway"),
        {"VOXRELAY_ALLOWED_ORIGINS": f"app://voxrelay,http://{APP_HOST}:{port}"},
    )
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def served_app(fresh_app: Path, static_server: tuple[int, Path], origin_gateway: Gateway) -> str:
    """Both builds on the static server; returns the app's base URL (http://app.test:PORT)."""
    port, root = static_server
    csp = f"default-src 'self'; script-src 'self'; connect-src 'self' ws://127.0.0.1:{origin_gateway.port}"
    for out, policy in (("default", None), ("strict", csp)):
        shutil.copytree(build_app(fresh_app, out, policy), root / out)
    assert list((root / "strict" / "assets").glob("pcm-worklet*.js")), "the strict build must keep the worklet a file"
    html = (root / "strict" / "index.html").read_text()
    assert "Content-Security-Policy" in html and "script-src 'self'" in html
    return f"http://{APP_HOST}:{port}"


@pytest.fixture
def chromium(playwright_driver: Any, static_server: tuple[int, Path], tmp_path: Path) -> Iterator[Any]:
    """Launch headless Chromium resolving app.test/other.test to loopback, treating them as secure
    (getUserMedia needs a secure context), with a fake microphone playing `audio`."""
    port, _ = static_server
    contexts: list[Any] = []

    def launch(audio: Path) -> Any:
        origins = f"http://{APP_HOST}:{port},http://{OTHER_HOST}:{port}"
        args = [
            *CHROMIUM_ARGS,
            f"--use-file-for-fake-audio-capture={audio}",
            f"--host-resolver-rules=MAP {APP_HOST} 127.0.0.1, MAP {OTHER_HOST} 127.0.0.1",
            f"--unsafely-treat-insecure-origin-as-secure={origins}",
        ]
        context = playwright_driver.chromium.launch_persistent_context(
            str(tmp_path / f"profile-{len(contexts)}"), executable_path=str(CHROMIUM), headless=True, args=args
        )
        contexts.append(context)
        return context

    yield launch
    for context in contexts:
        context.close()


@pytest.mark.parametrize(
    ("build", "mode", "clip_name"),
    [
        ("default", "linear16", "s03_question_weather.wav"),
        ("strict", "linear16", "s14_question_distance.wav"),
        ("default", "webm", "s14_question_distance.wav"),
    ],
)
def test_fresh_app_from_the_tarballs_dictates_from_another_origin(
    chromium: Any, served_app: str, origin_gateway: Gateway, tmp_path: Path, build: str, mode: str, clip_name: str
) -> None:
    clip = corpus_clip(clip_name)
    audio = tmp_path / f"padded-{clip_name}"
    duration = padded_wav(clip.path, audio, PAD_BEFORE_S, PAD_AFTER_S)
    page = chromium(audio).new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
    SERVED.clear()
    page.add_init_script(WATCH_MIC)
    sockets = SocketLog(page)
    page.goto(f"{served_app}/{build}/?gateway={origin_gateway.url}&mode={mode}")

    button = page.locator("button[data-state]")
    start = page.get_by_role("button", name="Start dictation")
    expect(start).to_be_enabled(timeout=15_000)
    clicked = time.monotonic()
    start.click()
    expect(button).to_have_attribute("data-state", "recording", timeout=15_000)
    expect(page.get_by_role("button", name="Stop dictation", pressed=True)).to_be_visible()
    remaining = clicked + PAD_BEFORE_S + duration + 0.8 - time.monotonic()
    if remaining > 0:
        page.wait_for_timeout(remaining * 1000)
    page.get_by_role("button", name="Stop dictation").click()
    expect(button).to_have_attribute("data-state", "idle", timeout=30_000)

    final = str(page.locator("#final").text_content() or "")
    details = f"\nfinal={final!r}\nconsole={console}\ngateway log:\n{origin_gateway.log_tail()}"
    assert page.get_by_role("alert").count() == 0, details
    assert page.evaluate("location.origin") != origin_gateway.url, "the app must come from another origin"
    assert wer(clip.reference, final) <= MAX_WER, f"WER too high for {final!r} vs {clip.reference!r}" + details
    assert {"type": "stopped"} in sockets.received, details
    assert sockets.text[0]["action"] == "configure", sockets.text
    if mode == "linear16":
        assert sockets.text[0]["audio_format"] == {"encoding": "linear16", "sample_rate": 16000, "channels": 1}
        assert page.evaluate("window.__vox.maxLevel") > 0.005, "the fake microphone was silent" + details
        assert sockets.binary and all(size == 1600 for size in sockets.binary[:-1]), sorted(set(sockets.binary))
    else:
        assert sockets.text[0]["audio_format"] == {"encoding": "webm"}, sockets.text[0]
    if build == "strict":
        # Under `script-src 'self'` the worklet loaded as the packed file, from the app's own origin
        # (the static server saw the request: AudioWorklet fetches do not show as page responses).
        worklets = [(path, status) for path, status in SERVED if "pcm-worklet" in path]
        assert worklets and all(status == 200 for _, status in worklets), SERVED
        assert all(path.startswith("/strict/assets/pcm-worklet") for path, _ in worklets), worklets
        assert not [line for line in console if "Content Security Policy" in line], console


def test_an_origin_the_gateway_does_not_list_is_refused(
    chromium: Any, served_app: str, origin_gateway: Gateway, tmp_path: Path
) -> None:
    """The same app from other.test (not in VOXRELAY_ALLOWED_ORIGINS): the gateway refuses the socket."""
    clip = corpus_clip("s01_command_lights.wav")
    audio = tmp_path / "padded.wav"
    padded_wav(clip.path, audio)
    page = chromium(audio).new_page()
    page.add_init_script(WATCH_MIC)
    page.goto(f"{served_app.replace(APP_HOST, OTHER_HOST)}/default/?gateway={origin_gateway.url}")
    page.get_by_role("button", name="Start dictation").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Could not connect to the dictation gateway", timeout=15_000)
    expect(page.locator("button[data-state]")).to_have_attribute("data-state", "error")
    assert "recording" not in page.evaluate("window.__vox.states")
