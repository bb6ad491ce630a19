"""ONNX export: the graph's outputs match PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.fakes import TINY_BACKBONE, normal_set

from piade import ModelConfig
from piade.inference.detector import load
from piade.inference.export import OUTPUTS, export_onnx
from piade.train.config import TrainConfig
from piade.train.run import fit

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_onnx_matches_pytorch(tmp_path: Path) -> None:
    config = TrainConfig(
        epochs=1, batch_size=8, encoder_weights=None, perceptual_weights=None, device="cpu"
    )
    fit(
        normal_set(10),
        tmp_path / "run",
        model_config=ModelConfig(image_size=32, backbone=TINY_BACKBONE),
        train_config=config,
    )
    detector = load(tmp_path / "run")
    diffs = export_onnx(detector, tmp_path / "model.onnx")
    assert diffs.keys() == set(OUTPUTS)
    assert diffs["score"] <= 1e-4 and diffs["anomaly_map"] <= 1e-4 and diffs["decoded"] == 0
    session = onnxruntime.InferenceSession(
        str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    images = normal_set(5, seed=4).images.float() / 255
    outputs = dict(
        zip(OUTPUTS, session.run(list(OUTPUTS), {"images": images.numpy()}), strict=True)
    )
    expected = detector.score(images)._asdict()
    for name in OUTPUTS:
        np.testing.assert_allclose(outputs[name], expected[name].numpy(), atol=1e-4, err_msg=name)
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["piade"])
    assert metadata["image_size"] == 32 and metadata["num_vectors"] == 2
    assert metadata["calibration"]["threshold"] == detector.calibration.threshold
    assert not list(tmp_path.glob("*.data"))  # one self-contained file
    assert torch.is_tensor(expected["score"])

    import piade.inference.export

    tight = dict(piade.inference.export.TOLERANCES, reconstruction=0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(piade.inference.export, "TOLERANCES", tight)
        with pytest.raises(
            piade.inference.export.ExportError, match=r"reconstruction by .* \(> 0e\+00\)"
        ):
            export_onnx(detector, tmp_path / "refused.onnx")
    assert not (tmp_path / "refused.onnx").exists()


def test_a_resnet_at_32_px_exports_with_a_free_batch_size(tmp_path: Path) -> None:
    """At 32 px the ResNet's last stage has one-pixel outputs, computed as matrix products
    (``piade.model.resnet.Conv2d``): the graph must still take any batch size."""
    config = TrainConfig(
        epochs=1, batch_size=8, encoder_weights=None, perceptual_weights=None, device="cpu"
    )
    fit(normal_set(10), tmp_path / "run", model_config=ModelConfig(image_size=32),
        train_config=config)  # fmt: skip
    detector = load(tmp_path / "run")
    export_onnx(detector, tmp_path / "model.onnx")
    session = onnxruntime.InferenceSession(
        str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    for count in (1, 5):
        images = normal_set(count, seed=4).images.float() / 255
        (score,) = session.run(["score"], {"images": images.numpy()})
        expected = detector.score(images).score.numpy()
        np.testing.assert_allclose(score, expected, atol=1e-4)
