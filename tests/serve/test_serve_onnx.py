"""``piade serve model.onnx``: the exported file answers like its model file, without torch."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.serve.conftest import client_for, encode, picture

from piade.cli.main import main
from piade.inference.detector import Detector
from piade.inference.export import export_onnx
from piade.inference.portable import OnnxDetector

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def onnx_file(detector: Detector, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("served-onnx") / "model.onnx"
    export_onnx(detector, path)
    return path


def test_onnx_answers_like_the_model_file(
    detector: Detector, served_model: Path, onnx_file: Path
) -> None:
    with (
        client_for(detector, served_model) as torch_client,
        client_for(OnnxDetector.load(onnx_file), onnx_file) as onnx_client,  # type: ignore[arg-type]
    ):
        for seed, (height, width) in enumerate([(45, 60), (32, 32), (80, 20)]):
            data = encode(picture(seed, height, width))
            want = torch_client.post("/v1/predict", files={"file": ("a.png", data)}).json()
            got = onnx_client.post("/v1/predict", files={"file": ("a.png", data)}).json()
            assert got["score"] == pytest.approx(want["score"], rel=1e-3, abs=1e-5)
            for key in ("label", "decoded_vector", "threshold", "score_kind", "width", "height"):
                assert got[key] == want[key], key
            for term in ("mse", "perceptual", "ssim"):
                assert got["terms"][term] == pytest.approx(want["terms"][term], rel=1e-3, abs=1e-5)
            answer = onnx_client.post("/v1/predict/map", files={"file": ("a.png", data)})
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(answer.content)).size == (width, height)
        info = onnx_client.get("/v1/model").json()
        assert (info["runtime"], info["device"], info["precision"]) == (
            "onnxruntime",
            "cpu",
            "fp32",
        )
        assert info["calibration"] == torch_client.get("/v1/model").json()["calibration"]
        assert info["config"] == detector.config.to_dict()
        batch = onnx_client.post(
            "/v1/predict/batch",
            files=[("files", (f"{i}.png", encode(picture(i)))) for i in range(3)],
        ).json()
        assert [r["name"] for r in batch["results"]] == ["0.png", "1.png", "2.png"]
        assert all(np.isfinite(r["score"]) for r in batch["results"])


def test_the_onnx_app_is_built_without_torch(onnx_file: Path) -> None:
    probe = (
        "import sys\n"
        "from piade.serve.server import build_app\n"
        "from piade.serve.app import ServeSettings\n"
        "import dataclasses\n"
        f"app = build_app({{'model': {str(onnx_file)!r}, 'device': 'auto', 'precision': 'fp32',"
        " 'settings': dataclasses.asdict(ServeSettings())})\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def test_serve_refuses_bf16_with_an_onnx_file(
    onnx_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(onnx_file), "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision bf16 applies to PyTorch" in err[0]
