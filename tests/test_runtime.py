"""Devices, precision, and the validation-set threshold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.fakes import TINY_BACKBONE, TensorImages, add_defect, normal_image, normal_set

from piade import ModelConfig, runtime
from piade.errors import ConfigError
from piade.inference.calibration import threshold_f1_max, threshold_from_normal
from piade.inference.detector import load, score_dataset
from piade.metrics import f1_max
from piade.runtime import autocast_dtype, resolve_device
from piade.train.config import TrainConfig
from piade.train.run import fit


def test_cpu_and_auto_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("spec", ["gpu", "tpu", "cuda:x"])
def test_bad_device_names_are_explained(spec: str) -> None:
    with pytest.raises(ConfigError, match="--device"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_missing_cuda_is_explained() -> None:
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda:0")


def test_autocast_is_fp32_on_the_cpu_unless_bf16_is_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert autocast_dtype("auto", torch.device("cpu")) is None
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: True)
    assert autocast_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: False)
    with pytest.raises(ConfigError, match="no bf16 instructions"):
        autocast_dtype("bf16", torch.device("cpu"))
    assert autocast_dtype("fp32", torch.device("cuda")) is None
    assert autocast_dtype("fp16", torch.device("cuda")) == torch.float16
    assert autocast_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    with pytest.raises(ConfigError, match="--precision"):
        autocast_dtype("fp8", torch.device("cpu"))


def test_thresholds() -> None:
    normal = np.arange(101, dtype=float)
    assert threshold_from_normal(normal, 0.99) == pytest.approx(99.0)
    scores, labels = np.array([0.1, 0.2, 0.3, 0.8, 0.9]), np.array([0, 0, 0, 1, 1])
    threshold = threshold_f1_max(scores, labels)
    assert 0.3 <= threshold < 0.8
    assert ((scores > threshold) == labels.astype(bool)).all()


def test_a_validation_set_switches_to_the_f1_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    images = [normal_image(rng, 32) for _ in range(4)] + [
        add_defect(normal_image(rng, 32), rng)[0] for _ in range(4)
    ]
    validation = TensorImages(np.stack(images), [0] * 4 + [1] * 4)
    config = TrainConfig(
        epochs=2, batch_size=8, encoder_weights=None, perceptual_weights=None, device="cpu"
    )
    fit(
        normal_set(12),
        tmp_path,
        model_config=ModelConfig(image_size=32, backbone=TINY_BACKBONE),
        train_config=config,
        validation_set=validation,
    )
    detector = load(tmp_path)
    assert detector.calibration.threshold_method == "f1-max:validation"
    scores = score_dataset(detector, validation)["score"]
    predicted = scores > detector.calibration.threshold
    labels = np.array(validation.labels, dtype=bool)
    f1 = 2 * (predicted & labels).sum() / (predicted.sum() + labels.sum())
    assert f1 == pytest.approx(f1_max(labels, scores)[0])
