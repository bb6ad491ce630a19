"""The real server: ``piade serve`` in its own process, on 127.0.0.1 and a free port, under load."""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from tests.serve.conftest import encode, expected_score, picture, start_server

from piade.inference.detector import Detector

pytestmark = pytest.mark.loopback
REQUESTS, AT_ONCE, IMAGES = 200, 8, 10
BUDGET_S = 120  # the whole load test, start-up excluded: about 10x what it takes here


@pytest.fixture(scope="module")
def server(served_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with start_server(served_model, tmp_path_factory.mktemp("server"), "--max-image-mb", "1",
                      "--batch-window-ms", "20") as url:  # fmt: skip
        yield url


def test_concurrent_requests_equal_detector_score(
    server: str, detector: Detector, tmp_path: Path
) -> None:
    images = [encode(picture(seed)) for seed in range(IMAGES)]
    expected = [expected_score(detector, data, tmp_path) for data in images]

    def ask(k: int) -> tuple[int, dict[str, object]]:
        with httpx.Client(timeout=60) as client:
            files = {"file": (f"{k}.png", images[k % IMAGES])}
            answer = client.post(f"{server}/v1/predict", files=files)
            assert answer.status_code == 200, answer.text
            return k, answer.json()

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(ask, range(REQUESTS)))
    took = time.monotonic() - start
    assert took < BUDGET_S, f"{REQUESTS} requests took {took:.0f} s"
    for k, result in answers:
        assert result["score"] == pytest.approx(expected[k % IMAGES], rel=1e-5, abs=1e-7), k
    assert max(int(r["batched_with"]) for _, r in answers) > 1  # requests were scored together
    metrics = httpx.get(f"{server}/metrics").text
    assert f'piade_requests_total{{route="/v1/predict",status="200"}} {REQUESTS}.0' in metrics


def test_a_chunked_upload_is_cut_off_at_the_limit(server: str) -> None:
    """A client streaming an endless body gets 413 once it passes --max-image-mb (1 MB here)."""
    host, port = server.removeprefix("http://").split(":")
    sent, answer = 0, b""
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (65536, b"\0" * 65536)
        while sent < 64 * 2**20:  # give up after 64 MB: the limit was not enforced
            if select.select([conn], [], [], 0)[0]:
                answer = conn.recv(65536)
                break
            try:
                conn.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                answer = conn.recv(65536)
                break
            sent += 65536
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 8 * 2**20, f"the server read {sent / 2**20:.0f} MB before refusing"
    assert httpx.get(f"{server}/healthz").status_code == 200
