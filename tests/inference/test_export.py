"""ONNX export: the graph's outputs match PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.fakes import TINY_BACKBONE, normal_set

from piade import ModelConfig
from piade.inference.detector import load
from piade.inference.export import export_onnx
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
    assert diffs.keys() == {"reconstruction", "score", "anomaly_map"}
    assert diffs["score"] <= 1e-4 and diffs["anomaly_map"] <= 1e-4
    session = onnxruntime.InferenceSession(
        str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    images = normal_set(5, seed=4).images.float() / 255
    reconstruction, score, anomaly_map = session.run(None, {"images": images.numpy()})
    expected = detector.score(images)
    np.testing.assert_allclose(score, expected.score.numpy(), atol=1e-4)
    np.testing.assert_allclose(anomaly_map, expected.anomaly_map.numpy(), atol=1e-4)
    np.testing.assert_allclose(reconstruction, expected.reconstruction.numpy(), atol=1e-4)
    assert not list(tmp_path.glob("*.data"))  # one self-contained file
    assert torch.is_tensor(expected.score)

    import piade.inference.export

    tight = dict(piade.inference.export.TOLERANCES, reconstruction=0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(piade.inference.export, "TOLERANCES", tight)
        with pytest.raises(
            piade.inference.export.ExportError, match=r"reconstruction by .* \(> 0e\+00\)"
        ):
            export_onnx(detector, tmp_path / "refused.onnx")
    assert not (tmp_path / "refused.onnx").exists()
