"""`voxrelay` command line: argument parsing only; the work lives in other modules."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from voxrelay import __version__

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="voxrelay", description="Streaming dictation gateway.")
    parser.add_argument("--version", action="version", version=f"voxrelay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (WebSocket /stt-stream and the web UI)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1; env VOXRELAY_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8765; env VOXRELAY_PORT)")
    serve.add_argument("--engine", help="engine name: local (default) or deepgram")
    serve.add_argument("--model", help="model name or path (local default tiny.en)")
    serve.add_argument("--max-sessions", type=int, dest="max_sessions", help="concurrent session cap")
    serve.add_argument("--log-level", dest="log_level", choices=["debug", "info", "warning", "error"])

    transcribe = commands.add_parser("transcribe", help="stream an audio file to a gateway and print the text")
    transcribe.add_argument("file", help="any audio file PyAV can read")
    transcribe.add_argument("--url", default="ws://127.0.0.1:8765/stt-stream")
    transcribe.add_argument("--speed", type=float, default=1.0, help="1 = real time, 0 = as fast as possible")
    transcribe.add_argument("--json", action="store_true", help="print every server message as a JSON line")
    transcribe.add_argument("--endpointing", type=int, default=300, help="ms of silence that ends an utterance")

    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return _transcribe(args)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voxrelay.engines.base import EngineFailure
    from voxrelay.server import create_app
    from voxrelay.settings import Settings

    overrides = {k: v for k, v in vars(args).items() if k != "command" and v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except EngineFailure as exc:
        print(f"voxrelay: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=max(settings.max_audio_frame, settings.max_text_frame) * 4,
    )
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    from voxrelay.client import transcribe_file

    try:
        text = asyncio.run(
            transcribe_file(
                args.file, args.url, speed=args.speed, json_lines=args.json, endpointing=args.endpointing
            )
        )
    except (OSError, ConnectionError) as exc:
        print(f"voxrelay: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"voxrelay: {exc}", file=sys.stderr)
        return 1
    if not args.json:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
