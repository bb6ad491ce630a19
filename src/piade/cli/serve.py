"""The ``serve`` verb: its flags and its handler (the server itself is :mod:`piade.serve`)."""

from __future__ import annotations

import argparse
import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from piade.cli.values import number_between, port_number, positive_int, positive_number
from piade.errors import ConfigError

NEEDS = ("fastapi", "uvicorn", "prometheus_client", "fastapi_swagger")


def add_parser(
    verbs: Any,
    formatter: type[argparse.HelpFormatter],
    precision_flag: Callable[[argparse.ArgumentParser], None],
) -> argparse.ArgumentParser:
    serve: argparse.ArgumentParser = verbs.add_parser(
        "serve",
        help="serve a detector over HTTP: an API and a web page",
        description="Serve a detector over HTTP: POST /v1/predict, a web page at /, the API's"
        " docs at /docs (docs/serve.md). Needs the serve extra: pip install 'piade[serve]'.",
        formatter_class=formatter,
    )
    serve.add_argument(
        "model",
        help="model file, the --out directory of 'piade fit', or a .onnx file of 'piade export'"
        " (run with ONNX Runtime on the CPU, without torch)",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on; 0.0.0.0 opens it to the network"
    )
    serve.add_argument("--port", type=port_number, default=8000)
    serve.add_argument(
        "--workers", type=functools.partial(positive_int, most=64), default=1,
        help="server processes, each with its own copy of the model",
    )  # fmt: skip
    serve.add_argument(
        "--token-file", type=Path,
        help="file holding a token: every endpoint but /healthz then needs"
        " 'Authorization: Bearer TOKEN' (the page asks for it once)",
    )  # fmt: skip
    serve.add_argument(
        "--max-image-mb", type=functools.partial(positive_number, most=1024), default=20.0,
        help="largest upload accepted, in MB (a batch request may be 4 times that)",
    )  # fmt: skip
    serve.add_argument(
        "--batch-size", type=functools.partial(positive_int, most=1024), default=16,
        help="most images scored together when requests arrive at once",
    )  # fmt: skip
    serve.add_argument(
        "--batch-window-ms", type=functools.partial(number_between, low=0, high=1000),
        default=5.0, help="how long the first waiting image waits for others to join its batch",
    )  # fmt: skip
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    precision_flag(serve)
    return serve


def run(args: argparse.Namespace) -> int:
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"piade serve needs {', '.join(missing)}: install the serve extra,"
            " pip install 'piade[serve]'"
        )
    from piade.serve.app import ServeSettings
    from piade.serve.server import read_token
    from piade.serve.server import run as serve

    token = read_token(args.token_file) if args.token_file is not None else None
    settings = ServeSettings(
        max_image_mb=args.max_image_mb,
        batch_size=args.batch_size,
        batch_window_ms=args.batch_window_ms,
        token=token,
    )
    serve(
        args.model,
        host=args.host,
        port=args.port,
        workers=args.workers,
        device=args.device,
        precision=args.precision,
        settings=settings,
    )
    return 0
