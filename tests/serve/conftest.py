"""Fixtures for the server's tests: a tiny model file, images in every format, an app client."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.reliability.conftest import tiny_detector

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from piade.data.decode import read_rgb, resize_image
from piade.inference.detector import Detector, load
from piade.serve.app import ServeSettings, create_app, model_id

TOKEN = "a-test-token-of-32-characters-00"


@pytest.fixture(scope="session")
def served_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("served") / "model.safetensors"
    tiny_detector().save(path)
    return path


@pytest.fixture(scope="session")
def detector(served_model: Path) -> Detector:
    return load(served_model)


def encode(image: np.ndarray | Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def picture(seed: int, height: int = 45, width: int = 60) -> np.ndarray:
    """A smooth RGB uint8 image (H, W, 3) with a bright patch, different for every seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 0.5 + 0.3 * np.sin(6 * x + seed) * np.cos(4 * y)
    rgb = np.stack([base, base * 0.9, 1 - base], axis=-1) + rng.normal(0, 0.02, (height, width, 3))
    top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
    rgb[top : top + 6, left : left + 6] = 1.0
    return (rgb.clip(0, 1) * 255).astype(np.uint8)


def expected_score(detector: Detector, data: bytes, tmp_path: Path) -> float:
    """What ``Detector.score`` gives for these file bytes, decoded as ``piade predict`` does."""
    path = tmp_path / "expected.img"
    path.write_bytes(data)
    batch = resize_image(read_rgb(str(path)), detector.image_size)[None].float() / 255
    return float(detector.score(batch).score[0])


def client_for(detector: Detector, served_model: Path, **settings: object) -> TestClient:
    app = create_app(
        detector,
        model_id=model_id(served_model),
        settings=ServeSettings(**settings),  # type: ignore[arg-type]
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(detector: Detector, served_model: Path) -> Iterator[TestClient]:
    with client_for(detector, served_model) as c:
        yield c


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_server(model: Path, folder: Path, *flags: str) -> Iterator[str]:
    """``piade serve MODEL`` in its own process on a free port; yields its URL once it answers."""
    import httpx

    port, log = free_port(), folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "piade", "serve", str(model), "--port", str(port),
             "--device", "cpu", *flags],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no answer in 90 s:\n{log.read_text()}"
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
