"""What a client sending bad input, too much, or no token sees; the server survives all of it."""

from __future__ import annotations

import base64
import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.serve.conftest import TOKEN, client_for, encode, picture

from piade.inference.detector import Detector


def png_declaring(width: int, height: int) -> bytes:
    """A 60-byte PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty (0 bytes)|the request has no body"),
        (b"hello, I am text", 422, "not a PNG, JPEG, BMP or TIFF image"),
        (encode(picture(1))[:300], 422, "truncated"),
        (encode(picture(1), "GIF"), 422, "not a PNG, JPEG, BMP or TIFF image"),
        (png_declaring(50_000, 50_000), 413, "decompression bomb"),
    ],
    ids=["empty", "text", "truncated", "gif", "bomb"],
)
def test_bad_images_get_one_clear_json_error(
    client: TestClient, body: bytes, status: int, words: str
) -> None:
    for answer in (
        client.post("/v1/predict", content=body),
        client.post("/v1/predict", files={"file": ("upload.png", body)}),
    ):
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert any(w in error for w in words.split("|")), error
        assert "Traceback" not in error and "\n" not in error
    assert client.get("/healthz").status_code == 200


def test_multipart_without_a_file(client: TestClient) -> None:
    answer = client.post("/v1/predict/batch", files={"note": (None, "no files here")})
    assert answer.status_code == 400 and "holds no file" in answer.json()["error"]
    answer = client.post("/v1/predict/batch", content=encode(picture(1)))
    assert answer.status_code == 415 and "multipart/form-data" in answer.json()["error"]


def test_oversized_uploads_are_refused(detector: Detector, served_model: Path) -> None:
    """By the declared length, or by counting a chunked body (the test client sends it whole; the
    real server's test checks that reading stops at the limit)."""

    def chunks() -> Iterator[bytes]:
        yield from (b"\0" * 1024 for _ in range(60))

    with client_for(detector, served_model, max_image_mb=0.05) as small:  # 51 kB
        for body in (b"\0" * 60_000, chunks()):
            answer = small.post("/v1/predict", content=body)
            assert answer.status_code == 413, answer.text
            assert "the limit is 0.05 MB (piade serve --max-image-mb)" in answer.json()["error"]
        assert small.post("/v1/predict", content=encode(picture(2))).status_code == 200


def test_nothing_a_client_sends_reaches_the_filesystem(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette's form parser spools files over 1 MB to disk; the server reads bodies itself."""

    def no_disk(*args: object, **kwargs: object) -> None:
        raise AssertionError("a temporary file was created")

    for name in ("SpooledTemporaryFile", "NamedTemporaryFile", "TemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    big = encode(picture(4, height=700, width=700), "BMP")  # 1.4 MB
    assert len(big) > 2**20
    answer = client.post("/v1/predict", files={"file": ("big.bmp", big)})
    assert answer.status_code == 200 and answer.json()["width"] == 700


def test_an_unexpected_failure_is_a_500_without_details_and_the_server_goes_on(
    detector: Detector,
    served_model: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with client_for(detector, served_model) as c:

        def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("secret internal detail")

        monkeypatch.setattr(detector, "score", broken)
        answer = c.post("/v1/predict", content=encode(picture(1)))
        assert answer.status_code == 500
        assert answer.json() == {"error": "internal error; the server log says why"}
        assert "secret" not in answer.text and "secret internal detail" in caplog.text
        monkeypatch.undo()
        assert c.post("/v1/predict", content=encode(picture(1))).status_code == 200


@pytest.fixture(scope="module")
def locked(detector: Detector, served_model: Path) -> Iterator[TestClient]:
    with client_for(detector, served_model, token=TOKEN) as c:
        yield c


def test_a_token_guards_every_endpoint_but_healthz(locked: TestClient) -> None:
    image = encode(picture(1))
    for method, path in [("POST", "/v1/predict"), ("POST", "/v1/predict/map"),
                         ("POST", "/v1/predict/batch"), ("GET", "/v1/model"), ("GET", "/metrics"),
                         ("GET", "/openapi.json"), ("GET", "/"), ("GET", "/docs")]:  # fmt: skip
        for header in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Token {TOKEN}"}):
            answer = locked.request(method, path, content=image, headers=header)
            assert answer.status_code == 401, (path, header)
            assert "missing or wrong token" in answer.json()["error"]
    assert locked.get("/healthz").status_code == 200
    assert locked.get("/static/swagger/swagger-ui.css").status_code == 200


def test_the_right_token_opens_the_api_and_the_pages_ask_for_it(locked: TestClient) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert locked.post("/v1/predict", content=encode(picture(1)), headers=bearer).status_code == 200
    assert locked.get("/v1/model", headers=bearer).json()["serving"]["token_required"] is True
    basic = "Basic " + base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    assert locked.get("/", headers={"Authorization": basic}).status_code == 200
    page = locked.get("/")
    assert page.headers["www-authenticate"].startswith("Basic")  # the browser asks, once
    assert locked.get("/v1/model").headers["www-authenticate"] == "Bearer"
