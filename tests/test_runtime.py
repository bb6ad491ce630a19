"""Devices, precision, busy CPU cores, and the validation-set threshold."""

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
from piade.runtime import autocast_dtype, busy_cores, resolve_device
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


def test_cpu_times_reads_each_cpus_busy_and_total_ticks(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(
        "cpu  30 0 10 200 10 0 0 8 0 0\n"  # all CPUs together: not one of them
        "cpu0 10 2 5 100 5 1 1 3 0 0\n"  # steal (3) counts as neither busy nor total
        "cpu1 20 0 5 100 5 0 0 5 0 0\n"
        "intr 12345 0 0\n"
    )
    assert runtime.cpu_times({0}, stat) == {0: (19, 124)}
    assert runtime.cpu_times({0, 1, 7}, stat) == {0: (19, 124), 1: (25, 130)}
    assert runtime.cpu_times({0}, tmp_path / "missing") == {}


def test_busy_cores_measures_this_machine() -> None:
    measured = busy_cores(0.05)  # the real one: the autouse fixture replaced only the module's
    if measured is not None:  # None off Linux
        busy, cores = measured
        assert cores >= 1 and 0 <= busy <= cores + 1e-9


@pytest.mark.parametrize(
    ("busy", "cores", "threads", "advised"),
    [
        (1.0, 2, 2, 1),  # another job on one of two cores: one thread, not two
        (1.9, 2, 2, 1),
        (3.2, 8, 8, 5),
        (0.2, 2, 2, None),  # a quiet machine
        (1.0, 8, 4, None),  # enough free cores for every thread
        (1.9, 2, 1, None),  # already one thread: nothing fewer to advise
    ],
)
def test_oversubscription_advice(
    busy: float, cores: int, threads: int, advised: int | None
) -> None:
    advice = runtime.oversubscription_advice(busy, cores, threads)
    if advised is None:
        assert advice is None
    else:
        assert advice is not None and f"OMP_NUM_THREADS={advised} " in advice
        assert f"with {threads} torch threads" in advice


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
