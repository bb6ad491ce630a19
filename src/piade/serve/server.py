"""Starting the server: load the model file once, read the token, hand the app to uvicorn.

With ``--workers N`` above 1, uvicorn starts N processes that each load the model (N copies in
memory, N scoring threads, each process's torch given an equal share of the cores); the
settings reach them through one environment variable, since uvicorn builds the app in each
process from an import string.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piade.errors import ConfigError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from piade.inference.detector import Detector
    from piade.inference.portable import OnnxDetector
    from piade.serve.app import ServeSettings

SETTINGS_ENV = "PIADE_SERVE_SETTINGS"  # JSON: model, device, precision and ServeSettings


def read_token(path: Path) -> str:
    """The token in ``path``: its text without surrounding white space; ConfigError naming the
    file when it cannot be read, is not UTF-8 or is shorter than 16 characters."""
    try:
        token = path.read_bytes().decode("utf-8").strip()
    except OSError as error:
        raise ConfigError(
            f"--token-file {path}: cannot read it ({error.strerror or error})"
        ) from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"--token-file {path}: not a UTF-8 text file") from error
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ConfigError(
            f"--token-file {path}: the token must be one word of at least 16 characters"
            " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))' > FILE)"
        )
    return token


def build_app(spec: dict[str, Any]) -> FastAPI:
    """The app for ``spec`` (model path, device, precision, settings): loads the model file, or
    the .onnx file ``piade export`` wrote."""
    from piade.inference.portable import OnnxDetector, is_onnx_path
    from piade.serve.app import ServeSettings, create_app, model_id

    threads = spec.get("threads")
    detector: Detector | OnnxDetector
    if is_onnx_path(str(spec["model"])):  # ONNX Runtime on the CPU; torch is never imported
        path = Path(str(spec["model"]))
        detector = OnnxDetector.load(path, threads=threads if isinstance(threads, int) else 0)
    else:
        from piade.inference.detector import load
        from piade.inference.modelfile import resolve_model_path

        if isinstance(threads, int):  # several workers share the cores instead of each taking all
            import torch

            torch.set_num_threads(threads)
        path = resolve_model_path(str(spec["model"]))
        detector = load(path, device=str(spec["device"]), precision=str(spec["precision"]))
    settings = ServeSettings(**spec["settings"])
    return create_app(detector, model_id=model_id(path), settings=settings)


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process (``--workers`` above 1)."""
    return build_app(json.loads(os.environ[SETTINGS_ENV]))


def run(
    model: str,
    *,
    host: str,
    port: int,
    workers: int,
    device: str,
    precision: str,
    settings: ServeSettings,
) -> None:
    """Serve until interrupted."""
    import uvicorn

    spec: dict[str, Any] = {
        "model": model,
        "device": device,
        "precision": precision,
        "settings": dataclasses.asdict(settings),
    }
    if workers == 1:
        app = build_app(spec)  # a bad model file fails here, before the port is opened
        uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
        return
    build_app(spec)  # check the model file once in this process before starting the workers
    spec["threads"] = max(1, (os.cpu_count() or 1) // workers)
    os.environ[SETTINGS_ENV] = json.dumps(spec)
    uvicorn.run(
        "piade.serve.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        server_header=False,
    )
