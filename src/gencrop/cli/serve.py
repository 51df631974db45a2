"""`gencrop serve`: the cropper as a web page and an HTTP API (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import sys

from . import CommandError, add_subject_finder_option

SERVE_HINT = "install the server: pip install 'gencrop[serve]'"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="a web page and an HTTP API that crop photos",
        description="Serve a web page at / and a JSON API under /v1/ (OpenAPI at /docs) that "
        "crop uploaded photos around their subject. The model is loaded once.",
    )
    p.add_argument("--model", help="model directory or hub id; default: the bundled model")
    p.add_argument("--epoch", type=int, help="epoch to load from a training run / original-code directory")
    p.add_argument("--device", help="cpu, cuda, cuda:1, mps (default: best available)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)",
    )
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key", help="require this key on /v1/crop and /v1/model ('Authorization: Bearer KEY' or 'X-API-Key: KEY')"
    )
    p.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser pages from ORIGIN (e.g. https://cms.example.com) to call the API; "
        "repeatable; default: CORS off",
    )
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest request body (default 25)")
    p.add_argument(
        "--max-megapixels", type=float, default=50.0, help="largest photo, checked before decoding (default 50)"
    )
    p.add_argument(
        "--max-output-megapixels",
        type=float,
        default=50.0,
        help="largest image answer (output=jpeg|png|webp), in megapixels (default 50)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds one request may take, its upload included (default 30)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a connection may take to send a request's headers (default 10)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=1000,
        help="open connections; more are closed as they arrive (default 1000)",
    )
    p.add_argument(
        "--queue-size",
        type=int,
        default=32,
        help="photos being prepared or waiting for the model; beyond, 503 at once (default 32)",
    )
    p.add_argument(
        "--max-in-flight",
        type=int,
        default=64,
        help="uploaded photos being processed at once (held in memory); beyond, 429 (default 64)",
    )
    p.add_argument("--batch-size", type=int, default=8, help="photos per network pass (default 8)")
    p.add_argument(
        "--batch-wait-ms",
        type=float,
        default=5.0,
        help="how long a waiting photo waits for others to batch with (default 5)",
    )
    p.add_argument(
        "--decode-threads",
        type=int,
        default=None,
        help="photos decoded (and their subjects found) at once, beside the model (default: one per CPU core)",
    )
    p.add_argument(
        "--root-path", default="", help="the sub-path a reverse proxy serves gencrop under (e.g. /gencrop), for /docs"
    )
    add_subject_finder_option(p)
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=run)


def build_settings(args):
    from ..serve.settings import ServeSettings

    try:
        return ServeSettings(
            max_upload_bytes=int(args.max_upload_mb * 2**20),
            max_pixels=int(args.max_megapixels * 1e6),
            max_output_pixels=int(args.max_output_megapixels * 1e6),
            timeout=args.timeout,
            header_timeout=args.header_timeout,
            max_connections=args.max_connections,
            queue_size=args.queue_size,
            max_in_flight=args.max_in_flight,
            batch_size=args.batch_size,
            batch_wait_ms=args.batch_wait_ms,
            **({"decode_threads": args.decode_threads} if args.decode_threads is not None else {}),
            api_key=args.api_key,
            cors_origins=list(args.cors),
        )
    except ValueError as e:
        raise CommandError(str(e)) from None


def run(args) -> int:
    try:
        import uvicorn

        from ..serve import create_app, warm_up
        from ..serve.connections import raise_open_files_limit, server_options
        from ..serve.memory import limit_arenas
        from ..serve.settings import LOOPBACK_HOSTS
    except ImportError as e:
        raise CommandError(f"{e}; {SERVE_HINT}") from None
    settings = build_settings(args)
    if not 0 < args.port < 65536:
        raise CommandError(f"--port must be 1-65535, got {args.port}")

    limit_arenas()  # before any thread starts: fewer, less fragmented heaps (gencrop.serve.memory)
    from ..inference import Cropper
    from ..runtime.files import resolve_model_dir
    from ..serve.model_info import describe_model

    try:
        # the model thread shares the cores with the threads that decode uploads: no spinning
        cropper = Cropper.from_pretrained(
            args.model, epoch=args.epoch, device=args.device, spin_wait=False, subject_finder=args.subject_finder
        )
        info = describe_model(resolve_model_dir(args.model), cropper.dim)
    except FileNotFoundError as e:
        raise CommandError(f"{e}" + ("" if args.model else " (use --model DIR)")) from None
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        raise CommandError(f"cannot load model {args.model or '(bundled)'}: {e}") from None

    if args.host not in LOOPBACK_HOSTS:
        print(
            f"gencrop serve: warning: listening on {args.host}: anyone who can reach this machine can "
            f"use the server{'' if args.api_key else ' (no --api-key set)'}",
            file=sys.stderr,
        )
    print(f"gencrop serve: model {info['name']} loaded; warming up", file=sys.stderr, flush=True)
    subjects = warm_up(cropper)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"gencrop serve: ready, {subjects}; open http://{shown}:{args.port}/ (API docs at /docs)",
        file=sys.stderr,
    )
    app = create_app(cropper, settings, model_info=info)
    open_files = raise_open_files_limit()
    if open_files < settings.max_connections + 64:
        print(
            f"gencrop serve: warning: this process may open {open_files} files; --max-connections "
            f"{settings.max_connections} needs more (raise `ulimit -n`)",
            file=sys.stderr,
        )
    uvicorn.run(
        app,
        **server_options(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
        root_path=args.root_path,
    )
    return 0
