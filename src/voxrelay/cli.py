"""`voxrelay` command line: argument parsing only; the work lives in other modules."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from voxrelay import __version__

if TYPE_CHECKING:
    from voxrelay.settings import Settings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxrelay", description="Streaming dictation gateway.")
    parser.add_argument("--version", action="version", version=f"voxrelay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (WebSocket /stt-stream and the web UI)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; env VOXRELAY_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8765; env VOXRELAY_PORT)")
    serve.add_argument("--engine", help="engine name: local (default) or deepgram")
    serve.add_argument("--model", help="the engine's model (local default tiny.en, deepgram nova-3)")
    serve.add_argument(
        "-o", "--option", dest="options", action="append", default=[], metavar="NAME=VALUE",
        help="an option of the chosen engine, e.g. -o final_beam_size=1 (repeatable; env VOXRELAY_<ENGINE>_<NAME>)",
    )
    serve.add_argument("--max-sessions", type=int, dest="max_sessions", help="concurrent session cap (per worker)")
    serve.add_argument(
        "--workers", type=int, help="gateway processes sharing the port (default 1; env VOXRELAY_WORKERS)",
    )
    serve.add_argument("--worker-slot", dest="worker_slot", help=argparse.SUPPRESS)  # set by the supervisor
    serve.add_argument("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "--log-format", dest="log_format", choices=["auto", "json", "text"],
        help="auto (default): text on a terminal, one JSON object per line otherwise",
    )

    transcribe = commands.add_parser("transcribe", help="stream an audio file to a gateway and print the text")
    transcribe.add_argument("file", help="any audio file PyAV can read")
    transcribe.add_argument("--url", default="ws://127.0.0.1:8765/stt-stream")
    transcribe.add_argument("--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible")
    transcribe.add_argument("--json", action="store_true", help="print every server message as a JSON line")
    transcribe.add_argument("--endpointing", type=int, default=300, help="ms of silence that ends an utterance")
    transcribe.add_argument("--language", help="the language spoken (default: the engine's)")
    transcribe.add_argument("--keyterm", action="append", default=[], help="a word to recognize (repeatable)")
    transcribe.add_argument("--api-key", dest="api_key", help="the gateway's API key (default: env VOXRELAY_API_KEY)")

    bench = commands.add_parser("bench", help="measure latency, accuracy and capacity; write a report")
    bench.add_argument("--quick", action="store_true", help="a smoke run of every measurement (seconds)")
    bench.add_argument("--out", default="bench-results", help="folder for bench.json, bench.md and plots")
    bench.add_argument("--corpus", help="folder with refs.tsv and WAV clips (default: the repository's test clips)")
    bench.add_argument("--clips", type=int, help="use only the first N clips")
    bench.add_argument("--levels", help="concurrent local sessions to try, e.g. 1,4,8")
    bench.add_argument("--proxy-levels", help="concurrent proxied streams, e.g. 1,100,1000")
    bench.add_argument("--proxy-seconds", type=float, help="seconds of audio per proxied stream")
    bench.add_argument(
        "--proxy-workers", type=int,
        help="run the proxied gateway as `serve --workers N`, unpinned (the rig shares the cores)",
    )
    bench.add_argument("--skip-local", action="store_true")
    bench.add_argument("--skip-proxy", action="store_true")
    bench.add_argument("--skip-upload", action="store_true", help="skip live sessions with a concurrent file upload")
    bench.add_argument("--upload-sessions", type=int, help="live sessions during the upload part (default 3)")
    bench.add_argument("--upload-seconds", type=float, help="length of the uploaded recording (default 300)")
    bench.add_argument(
        "--keyterms", action="store_true",
        help="measure keyterm recall, WER and cost on the keyterm set, and on the corpus with the set's keyterms",
    )
    bench.add_argument("--keyterm-set", help="folder with refs.tsv and WAV clips (default tests/fixtures/keyterms)")
    bench.add_argument(
        "--local-glossary", action="store_true",
        help="the local part sends the keyterm set's keyterms (all of them) with every /stt-stream session",
    )
    bench.add_argument(
        "--long", action="store_true",
        help="measure long utterances (5-20 s without a pause, built from the corpus): final after stop against "
        "length, endpointing, first interim, WER, capacity",
    )
    bench.add_argument(
        "--long-set", help="also stream these report-only long utterances (folder with refs.tsv and WAV clips)"
    )
    bench.add_argument("--long-levels", help="concurrent sessions for capacity on long utterances (default 4,8,12,16)")
    compare = bench.add_mutually_exclusive_group()
    compare.add_argument(
        "--compare-ref", nargs="?", const="HEAD~1", metavar="REF",
        help="also measure this git commit (default HEAD~1), alternately with this tree, and report both side by "
        "side (the corpus and, with --long/--long-set, the long utterances; capacity at --levels, default 8,14, "
        "and --long-levels, default 8)",
    )
    compare.add_argument("--compare-dir", metavar="DIR", help="as --compare-ref, with another checkout of voxrelay")

    db = commands.add_parser("db", help="the usage database (docs/usage.md)")
    db.add_argument("action", choices=["upgrade"], help="upgrade: apply the schema migrations")
    usage = commands.add_parser("usage", help="print every key's usage as a table (reads the usage database)")
    usage.add_argument("--from", dest="start", type=_day, help="first UTC day, YYYY-MM-DD (default: the 1st)")
    usage.add_argument("--to", dest="end", type=_day, help="last UTC day, included (default: today)")
    usage.add_argument("--group-by", dest="group_by", choices=["day"], help="a line per key and day")
    quota = commands.add_parser("quota", help="list, set or remove keys' own monthly audio quotas")
    quota.add_argument("key", nargs="?", help="a key's fingerprint (key-1a2b3c4d) or `anonymous`")
    quota.add_argument("seconds", nargs="?", type=float, help="audio seconds per month, 0 = unlimited")
    quota.add_argument("--remove", action="store_true", help="the default quota applies to KEY again")

    args = parser.parse_args(argv)
    if args.command in ("db", "usage", "quota"):
        return _usage(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "bench":
        return _bench(args, argv if argv is not None else sys.argv[2:])
    return _transcribe(args)


def _bench(args: argparse.Namespace, argv: list[str]) -> int:
    from voxrelay.bench.checkout import CompareError

    try:
        report = _run_bench(args, argv)
    except CompareError as exc:  # the other side of --compare-ref/--compare-dir cannot run: say why, no traceback
        print(f"voxrelay bench: {exc}", file=sys.stderr)
        return 2
    print(report.read_text())
    if args.compare_ref or args.compare_dir:
        print((report.parent / "compare.txt").read_text())
    print(f"report: {report}")
    return 0


def _run_bench(args: argparse.Namespace, argv: list[str]) -> Path:
    from voxrelay.bench import run_bench

    def ints(text: str | None) -> list[int] | None:
        return [int(x) for x in text.split(",") if x] if text else None

    return run_bench(
        out=Path(args.out),
        quick=args.quick,
        corpus=Path(args.corpus) if args.corpus else None,
        clips=args.clips,
        levels=ints(args.levels),
        proxy_levels=ints(args.proxy_levels),
        proxy_seconds=args.proxy_seconds,
        proxy_workers=args.proxy_workers,
        skip_local=args.skip_local,
        skip_proxy=args.skip_proxy,
        skip_upload=args.skip_upload,
        upload_sessions=args.upload_sessions,
        upload_seconds=args.upload_seconds,
        keyterms=args.keyterms,
        keyterm_set=Path(args.keyterm_set) if args.keyterm_set else None,
        local_glossary=args.local_glossary,
        long=args.long,
        long_set=Path(args.long_set) if args.long_set else None,
        long_levels=ints(args.long_levels),
        compare_ref=args.compare_ref,
        compare_dir=Path(args.compare_dir) if args.compare_dir else None,
        argv=[a for a in argv if a != "bench"],
    )


# `serve` flags that are options of the engine rather than of the gateway, and those that are neither.
_ENGINE_FLAGS = ("model",)
_NOT_SETTINGS = ("command", "options", "worker_slot")


def _serve(args: argparse.Namespace) -> int:
    # Settings first, and only the light modules for them: a misspelled variable or option
    # stops the server before any model or SDK loads.
    from voxrelay.engines import SettingsError, check_environment, create_engine
    from voxrelay.engines.base import EngineFailure
    from voxrelay.engines.settings import load_settings
    from voxrelay.settings import Settings

    problems = check_environment()
    if problems:
        return _refuse(problems)
    given = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS and v is not None}
    engine_options: dict[str, object] = {k: given.pop(k) for k in _ENGINE_FLAGS if k in given}
    for option in args.options:
        name, sep, value = option.partition("=")
        if not sep or not name.strip():
            return _refuse([f"engine option {option!r} is not NAME=VALUE"])
        engine_options[name.strip().replace("-", "_")] = value
    try:
        settings = load_settings(Settings, given)
        engine = create_engine(settings.engine, engine_options)
    except SettingsError as exc:
        return _refuse(exc.problems)
    except EngineFailure as exc:
        return _refuse([str(exc)])

    import uvicorn

    from voxrelay.gateway.app import create_app
    from voxrelay.ops.logs import configure_logging
    from voxrelay.ops.workers import WorkerSlot, follow_supervisor
    from voxrelay.usage.commands import run_db_upgrade
    from voxrelay.usage.database import SchemaTooNew

    configure_logging(settings.log_level, settings.log_format)
    slot = WorkerSlot.from_arg(args.worker_slot) if args.worker_slot else None
    if slot is not None:
        follow_supervisor(slot.supervisor_pid)
    else:  # the supervisor migrated before starting its workers
        try:
            run_db_upgrade(settings)  # a database of a newer voxrelay stops the start here, in one line
        except SchemaTooNew as exc:
            return _refuse([str(exc)])
        except Exception as exc:  # away or refusing: the gateway starts anyway and retries in the background
            print(f"voxrelay: the usage database cannot be reached yet ({type(exc).__name__}); starting anyway",
                  file=sys.stderr)
    if settings.workers > 1:
        return _supervise(args, settings)
    app = create_app(settings, engine)
    from voxrelay.ops.drain import DrainingServer
    from voxrelay.security.limits import ws_max_size

    # SIGTERM/SIGINT drain the live sessions first (docs/reliability.md); a second signal exits at once.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's records go to the root handler configure_logging installed
        ws_max_size=ws_max_size(app.state.gateway.frame_limits),  # an oversize frame is refused while read
        # Named, not "auto": the cheapest of uvicorn's WebSocket implementations at 1000 streams (76 % of a core
        # against 85-87 % for wsproto and legacy websockets; docs/benchmarks.md "Issue 17: stack floors").
        ws="websockets-sansio",
        # Audio barely compresses and transcripts are small: deflate only costs CPU (and OWASP
        # advises against it unless needed).
        ws_per_message_deflate=False,
        # A worker names itself on every response and handshake, so a client (or a test) can tell them apart.
        headers=[("X-Voxrelay-Worker", str(os.getpid()))] if slot is not None else None,
    )
    from voxrelay.ops.gc_tuning import tune_for_serving

    tune_for_serving()  # long-lived sessions: fewer, cheaper collections (gc_tuning.py)
    server = DrainingServer(config, app.state.gateway.drainer)
    if slot is None:
        server.run()
        return 0
    import socket

    from voxrelay.ops.box_metrics import BoxMetrics
    from voxrelay.security.used_tokens import SharedUsedTokens

    gateway = app.state.gateway
    gateway.gatekeeper.share_used_tokens(SharedUsedTokens(slot.used_tokens))
    gateway.box_metrics = BoxMetrics(slot.index, slot.workers, slot.runtime_dir, gateway.render_metrics)
    logging.getLogger("voxrelay.ops.workers").info("worker %d serving (pid %d)", slot.index, os.getpid())
    server.run(sockets=[socket.socket(fileno=slot.fd)])
    return 0


def _supervise(args: argparse.Namespace, settings: Settings) -> int:
    """Run `settings.workers` copies of this `serve` command on one port (ops/workers.py)."""
    from voxrelay.ops.workers import Supervisor, bind_slots, worker_command

    sockets = bind_slots(settings.host, settings.port, settings.workers)
    port = sockets[0].getsockname()[1]
    flags = ["--port", str(port)]
    for name, value in vars(args).items():
        if name not in (*_NOT_SETTINGS, "workers", "port") and value is not None:
            flags += [f"--{name.replace('_', '-')}", str(value)]
    for option in args.options:
        flags += ["--option", option]
    logging.getLogger("voxrelay.ops.workers").info(
        "serving on http://%s:%d with %d worker processes, each taking up to %d sessions",
        settings.host, port, settings.workers, settings.max_sessions,
    )
    return Supervisor(worker_command(flags), sockets, settings.token_secret).run()


def _day(text: str) -> date:
    return date.fromisoformat(text)


def _usage(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from voxrelay.engines import check_environment
    from voxrelay.settings import Settings
    from voxrelay.usage import commands
    from voxrelay.usage.api import FINGERPRINT
    from voxrelay.usage.database import SchemaTooNew

    problems = check_environment()
    if problems:
        return _refuse(problems)
    settings = Settings()
    try:
        if args.command == "db":
            print(commands.run_db_upgrade(settings))
        elif args.command == "usage":
            print(commands.run_usage(settings, args.start, args.end, args.group_by == "day"))
        else:
            if args.key is not None and not FINGERPRINT.match(args.key):
                return _refuse([f"{args.key!r} is not a key fingerprint (key-1a2b3c4d) or `anonymous`"])
            if args.key is not None and args.seconds is None and not args.remove:
                return _refuse(["give the seconds per month (0 = unlimited), or --remove"])
            if args.seconds is not None and args.seconds < 0:
                return _refuse(["seconds must be 0 (unlimited) or more"])
            print(commands.run_quota(settings, args.key, args.seconds, remove=args.remove))
    except SchemaTooNew as exc:
        return _refuse([str(exc)])
    except (OSError, SQLAlchemyError) as exc:
        return _refuse([f"the usage database cannot be reached: {str(exc).splitlines()[0]}"])
    return 0


def _refuse(problems: Iterable[str]) -> int:
    """Print why `serve` will not start, one line each, and return its exit status."""
    for problem in problems:
        print(f"voxrelay: {problem}", file=sys.stderr)
    return 2


def _transcribe(args: argparse.Namespace) -> int:
    import os

    from voxrelay.client import ClientError, transcribe
    from voxrelay.client.console import Console

    console = Console(json_lines=args.json)
    options = {"endpointing": args.endpointing, "language": args.language, "keyterms": args.keyterm}
    try:
        transcript = transcribe(
            args.file,
            args.url,
            api_key=args.api_key or os.environ.get("VOXRELAY_API_KEY") or None,
            speed=args.speed,
            on_message=console.show,
            **{name: value for name, value in options.items() if value},
        )
    except ClientError as exc:
        print(f"voxrelay: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    console.finish(transcript.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
