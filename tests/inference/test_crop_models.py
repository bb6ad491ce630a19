"""A model trained on centrally cropped images: it remembers the crop, cuts every image it scores
alike (model file, predict, ONNX Runtime, evaluate) and lays its maps on the part it saw."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.fakes import FAST_FIT, TINY_BACKBONE, normal_image, offline_train_config, write_mvtec

from piade import ModelConfig
from piade.cli.main import main
from piade.data import build_datasets
from piade.data.decode import resize_image
from piade.errors import ConfigError
from piade.inference.detector import load
from piade.inference.predict import as_scorer
from piade.train.run import fit

CROP = 0.5


@pytest.fixture(scope="module")
def cropped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("crop")
    root = write_mvtec(base / "data", size=48, n_train=12, n_good=2, n_bad=2)
    train, _ = build_datasets("mvtec", root, "widget", image_size=32, center_crop=CROP)
    config = ModelConfig(image_size=32, center_crop=CROP, backbone=TINY_BACKBONE)
    fit(train, base / "run", model_config=config, train_config=offline_train_config(epochs=1))
    return {"root": root, "run": base / "run", "base": base}


def test_the_model_file_keeps_the_crop_and_scores_the_cut_image(cropped: dict[str, Path]) -> None:
    detector = load(cropped["run"])
    assert detector.config.center_crop == CROP
    image = normal_image(np.random.default_rng(5), 64)
    scorer = as_scorer(detector)
    resized = scorer.resize(image)
    assert np.array_equal(resized, resize_image(image[16:48, 16:48], 32).numpy())
    full = scorer.score(resized[None].astype(np.float32) / 255)
    laid = scorer.map_at(full["anomaly_map"][0], 64, 64)
    assert laid.shape == (64, 64) and (laid[16:48, 16:48] > 0).all()
    outside = np.ones((64, 64), dtype=bool)
    outside[16:48, 16:48] = False
    assert not laid[outside].any()  # the model never saw the border


def test_a_data_set_cut_otherwise_is_refused(cropped: dict[str, Path], tmp_path: Path) -> None:
    whole, _ = build_datasets("mvtec", cropped["root"], "widget", image_size=32)
    config = ModelConfig(image_size=32, center_crop=CROP, backbone=TINY_BACKBONE)
    with pytest.raises(ConfigError, match=r"build the data set with center_crop=0\.5"):
        fit(whole, tmp_path / "run", model_config=config, train_config=offline_train_config())


def test_onnx_runtime_cuts_and_lays_maps_as_the_model_file_does(cropped: dict[str, Path]) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from piade.inference.export import export_onnx
    from piade.inference.portable import OnnxDetector

    detector = load(cropped["run"])
    export_onnx(detector, cropped["base"] / "model.onnx")
    onnx = OnnxDetector.load(cropped["base"] / "model.onnx")
    assert onnx.center_crop == CROP
    image = normal_image(np.random.default_rng(6), 80)[:, :60]  # not square
    torch_scorer = as_scorer(detector)
    want, got = torch_scorer.resize(image).astype(int), onnx.resize(image).astype(int)
    assert np.abs(want - got).max() <= 1
    ramp = np.linspace(0.1, 1, 32, dtype=np.float32)
    anomaly_map = np.outer(ramp, ramp[::-1])  # smooth: both runtimes' bilinear resizing agree
    a, b = torch_scorer.map_at(anomaly_map, 80, 60), onnx.map_at(anomaly_map, 80, 60)
    assert a.shape == b.shape == (80, 60) and np.abs(a - b).max() < 5e-3
    assert not a[:20].any() and not b[:, :15].any() and (b[20:60, 15:45] > 0).all()


def test_fit_and_evaluate_from_the_command_line(
    cropped: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", "mvtec", "--root", str(cropped["root"]), "--category", "widget"]
    run = tmp_path / "run"
    assert (
        main(["fit", *data, *FAST_FIT, "--epochs", "1", "--center-crop", "0.5", "--out", str(run)])
        == 0
    )
    info = json.loads((run / "run.json").read_text())
    assert info["model"]["center_crop"] == 0.5
    assert main(["evaluate", str(run), *data, "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["center_crop"] == 0.5 and metrics["n_anomalous"] == 2
    capsys.readouterr()
    assert (
        main(["fit", *data, *FAST_FIT, "--center-crop", "0", "--out", str(tmp_path / "bad")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "center_crop must be between 0.1 and 1" in err[0]
    assert not (tmp_path / "bad").exists()
