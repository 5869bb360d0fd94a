"""The code a comparison runs: this tree, a git commit exported to a temporary folder, or another checkout.

Each side's gateway is `python -m voxrelay.cli serve` with this bench's Python (the same venv, so the same
faster-whisper, CTranslate2 and model) and `PYTHONPATH` set to that side's `src` alone, which comes before the
venv's editable install on `sys.path`. Before a gateway starts, a child with the same environment says where
`voxrelay` imports from, so a side never silently measures the other side's code. The web UI's assets are not
needed: a gateway without them serves a placeholder page at `/`.

A commit is exported with `git archive` (its `src/` only) into a temporary folder removed afterwards; the
repository's worktrees and refs are not touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from voxrelay.bench.common import Gateway

__all__ = ["CompareError", "Tree", "checkout_dir", "exported_commit", "metrics_url", "start_gateway", "this_tree"]


class CompareError(RuntimeError):
    """A comparison that cannot run; the message is for the person who asked for it."""


@dataclass(frozen=True)
class Tree:
    """One side: `label` heads its column, `src` holds its `voxrelay` package, `describe` goes in the report."""

    label: str
    src: Path
    commit: str | None
    describe: str


def _git(repo: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise CompareError("git is not installed") from exc
    if done.returncode != 0:
        raise CompareError(f"git {' '.join(args)} in {repo}: {done.stderr.strip() or done.returncode}")
    return done.stdout.strip()


def _head(repo: Path, src: Path) -> tuple[str | None, bool]:
    """The checkout's short HEAD and whether its `src` differs from it; (None, False) outside git."""
    try:
        return _git(repo, "rev-parse", "--short", "HEAD"), bool(_git(repo, "status", "--porcelain", "--", str(src)))
    except CompareError:
        return None, False


def _at(commit: str | None, dirty: bool) -> str:
    """" at <commit>" for a report's description (and whether `src` has uncommitted changes); "" outside git."""
    return "" if commit is None else f" at {commit}" + (" with uncommitted changes in src" if dirty else "")


def this_tree() -> Tree:
    """The code this bench runs (its `src` folder), with its commit and whether `src` has uncommitted changes."""
    import voxrelay

    src = Path(voxrelay.__file__).resolve().parents[1]
    commit, dirty = _head(src.parent, src)
    return Tree("this tree", src, commit, f"`{src}`{_at(commit, dirty)}")


@contextmanager
def exported_commit(ref: str, repo: Path | None = None) -> Iterator[Tree]:
    """`ref`'s `src/` exported into a temporary folder for as long as the context lasts.

    Raises CompareError if `ref` is not a commit of the repository (default: the one holding this tree) or has
    no `src/voxrelay`.
    """
    repo = repo or this_tree().src.parent
    try:
        sha = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    except CompareError as exc:
        raise CompareError(f"--compare-ref {ref}: not a commit of {repo} ({exc})") from exc
    short = _git(repo, "rev-parse", "--short", sha)
    subject = _git(repo, "log", "-1", "--format=%s", sha)
    with tempfile.TemporaryDirectory(prefix=f"voxrelay-{short}-") as folder:
        archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", sha, "src"],
                                 capture_output=True, check=False)
        if archive.returncode != 0:
            raise CompareError(f"git archive {short}: {archive.stderr.decode(errors='replace').strip()}")
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        src = Path(folder) / "src"
        if not (src / "voxrelay" / "__init__.py").is_file():
            raise CompareError(f"commit {short} has no src/voxrelay package")
        yield Tree(short, src, short, f"commit `{short}` ({ref}: “{subject}”), exported with `git archive`")


def checkout_dir(folder: Path) -> Tree:
    """Another checkout of voxrelay (its root, or the folder holding the `voxrelay` package)."""
    folder = folder.resolve()
    for src in (folder / "src", folder):
        if (src / "voxrelay" / "__init__.py").is_file():
            break
    else:
        raise CompareError(f"--compare-dir {folder}: no voxrelay package in it or in its src/")
    commit, dirty = _head(folder, src)
    label = commit + ("+changes" if dirty else "") if commit else folder.name
    return Tree(label, src, commit, f"the checkout `{folder}`{_at(commit, dirty)}")


def _imported_from(src: Path) -> Path:
    code = "import voxrelay, sys; sys.stdout.write(voxrelay.__file__)"
    done = subprocess.run([sys.executable, "-c", code], env=_env(src), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CompareError(f"`import voxrelay` from {src} failed: {done.stderr.strip().splitlines()[-1:]}")
    return Path(done.stdout).resolve()


def _env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src)}


def start_gateway(tree: Tree, args: Sequence[str], log: Path) -> Gateway:
    """`tree`'s gateway, ready; its output goes to `log`. Raises CompareError (with the output's end) if it
    imports another tree's code or does not start (an old commit refusing a flag or setting, a crash)."""
    where = _imported_from(tree.src)
    if not where.is_relative_to(tree.src.resolve()):
        raise CompareError(f"{tree.label}: voxrelay imports from {where}, not from {tree.src}")
    gateway = Gateway(*args, env={"PYTHONPATH": str(tree.src)}, log=log)
    try:
        return gateway.wait_ready()
    except (RuntimeError, TimeoutError) as exc:
        gateway.stop()
        raise CompareError(f"{tree.label}'s gateway did not start: {exc}") from exc


def metrics_url(gateway: Gateway) -> str | None:
    """The gateway's /metrics if it has one (an old commit may not): the capacity rows' event-loop lag."""
    url = f"http://127.0.0.1:{gateway.port}/metrics"
    try:
        return url if httpx.get(url, timeout=5).status_code == 200 else None
    except httpx.TransportError:
        return None
