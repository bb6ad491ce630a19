"""The HTTP API with FastAPI's test client: every endpoint, and what a client sees."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from tests.serve.conftest import client_for, encode, expected_score, picture

from piade.inference.detector import Detector
from piade.version import __version__


def test_healthz(client: TestClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [("PNG", "RGB", {}), ("JPEG", "RGB", {"quality": 90}), ("BMP", "RGB", {}),
     ("TIFF", "RGB", {}), ("PNG", "L", {}), ("JPEG", "L", {}), ("PNG", "RGBA", {})],
)  # fmt: skip
def test_predict_equals_detector_score_in_every_format(
    client: TestClient, detector: Detector, tmp_path: Path, fmt: str, mode: str, options: dict
) -> None:
    data = encode(Image.fromarray(picture(3)).convert(mode), fmt, **options)
    as_file = client.post("/v1/predict", files={"file": (f"x.{fmt.lower()}", data)})
    raw = client.post("/v1/predict", content=data, headers={"content-type": "image/*"})
    expected = expected_score(detector, data, tmp_path)
    for answer in (as_file, raw):
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["score"] == pytest.approx(expected, rel=1e-5, abs=1e-7)
        assert (result["width"], result["height"]) == (60, 45)
        assert result["anomalous"] == (result["score"] > result["threshold"])
        assert result["label"] == ("anomalous" if result["anomalous"] else "normal")
        assert result["model_id"].startswith("sha256:") and result["seconds"] > 0
        assert set(result["terms"]) == {"mse", "perceptual", "ssim"}
    assert as_file.json()["name"] == f"x.{fmt.lower()}" and raw.json()["name"] == "body"


def test_any_size_and_a_map_at_the_images_own_size(client: TestClient) -> None:
    data = encode(picture(5, height=31, width=97))
    result = client.post("/v1/predict?map=png", files={"file": ("wide.png", data)}).json()
    overlay = Image.open(io.BytesIO(base64.b64decode(result["map_png_base64"])))
    assert overlay.format == "PNG" and overlay.size == (97, 31)
    assert "map_png_base64" not in client.post("/v1/predict", content=data).json()


def test_the_map_endpoint_returns_a_png(client: TestClient) -> None:
    data = encode(picture(6))
    for style in ("overlay", "heatmap"):
        answer = client.post(f"/v1/predict/map?style={style}", content=data)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(answer.content)).size == (60, 45)
        assert float(answer.headers["x-piade-score"]) > 0
    overlay, heat = (client.post(f"/v1/predict/map?style={s}", content=data).content
                     for s in ("overlay", "heatmap"))  # fmt: skip
    assert overlay != heat


def test_batch_keeps_the_order_and_isolates_a_bad_image(client: TestClient) -> None:
    good = [encode(picture(seed)) for seed in (1, 2, 3)]
    files = [("files", ("a.png", good[0])), ("files", ("broken.png", b"not an image")),
             ("files", ("b.png", good[1])), ("files", ("c.png", good[2]))]  # fmt: skip
    answer = client.post("/v1/predict/batch", files=files)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["name"] for r in results] == ["a.png", "broken.png", "b.png", "c.png"]
    assert (
        results[1]["status"] == 422 and "not a PNG, JPEG, BMP or TIFF image" in results[1]["error"]
    )
    singles = [client.post("/v1/predict", content=data).json()["score"] for data in good]
    batch_scores = [r["score"] for r in results if "score" in r]
    assert batch_scores == pytest.approx(singles, rel=1e-5)


def test_model_describes_itself(client: TestClient, served_model: Path, detector: Detector) -> None:
    model = client.get("/v1/model").json()
    assert (
        model["model_id"] == "sha256:" + hashlib.sha256(served_model.read_bytes()).hexdigest()[:16]
    )
    assert model["piade_version"] == __version__ and model["image_size"] == detector.image_size
    assert model["calibration"]["threshold"] == detector.calibration.threshold
    assert "anomalous when its score is above" in model["threshold_explained"]
    assert model["config"]["image_size"] == detector.image_size
    assert model["serving"]["token_required"] is False


def test_model_names_the_training_data_as_fit_recorded_it(
    detector: Detector, served_model: Path
) -> None:
    trained = Detector(detector.model, detector.criterion, detector.calibration,
                       info={**detector.info, "training": {"data": {"description": "bottles"},
                                                           "train": {"epochs": 400}}})  # fmt: skip
    with client_for(trained, served_model) as c:
        model = c.get("/v1/model").json()
    assert model["data"] == {"description": "bottles"} and model["training"]["epochs"] == 400


def test_metrics_count_requests_in_the_prometheus_format(client: TestClient) -> None:
    client.post("/v1/predict", content=encode(picture(8)))
    client.post("/v1/predict", content=b"")
    text = client.get("/metrics").text
    assert "# TYPE piade_requests_total counter" in text
    assert 'piade_requests_total{route="/v1/predict",status="200"}' in text
    assert 'piade_requests_total{route="/v1/predict",status="400"}' in text
    assert 'piade_request_seconds_bucket{le="0.005",route="/v1/predict"}' in text
    assert "piade_images_scored_total" in text and "piade_batch_images_bucket" in text
    client.get("/no/such/path")
    assert 'route="other",status="404"' in client.get("/metrics").text


def test_the_page_and_the_docs_need_no_network(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no fonts
    docs = client.get("/docs").text
    assert "/static/swagger/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/swagger/{asset}").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/predict", "/v1/predict/map", "/v1/predict/batch", "/v1/model"} <= set(paths)


def test_json_errors_are_one_sentence(client: TestClient) -> None:
    answer = client.post("/v1/predict?map=jpeg", content=encode(picture(1)))
    assert answer.status_code == 422 and answer.json()["error"].startswith("invalid request:")
    answer = client.get("/nowhere")
    assert answer.status_code == 404 and json.loads(answer.text) == {"error": "Not Found"}


def test_scores_differ_between_images(client: TestClient) -> None:
    scores = {
        client.post("/v1/predict", content=encode(picture(s))).json()["score"] for s in range(4)
    }
    assert len(scores) == 4 and all(np.isfinite(list(scores)))
