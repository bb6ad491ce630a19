"""The GPU path: CUDA training with bf16 autocast and compilation, scoring on the GPU.

Skipped without a CUDA device (CI has none); ``benchmarks/gpu.sh`` runs them on a GPU machine. The
parts of the path that do not need a GPU (images preloaded on the device, indices moved once per
epoch, the end-of-epoch NaN check, autocast in the training step) are tested on the CPU in
``test_speed_paths.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.fakes import normal_set

from piade import ModelConfig
from piade.inference.detector import load
from piade.train.config import TrainConfig
from piade.train.run import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _config(**overrides: object) -> TrainConfig:
    settings = {
        "epochs": 2,
        "batch_size": 8,
        "encoder_weights": None,
        "perceptual_weights": None,
        "device": "cuda",
    }
    return TrainConfig(**(settings | overrides))  # type: ignore[arg-type]


@pytest.mark.parametrize("compile_mode", [None, "default", "reduce-overhead"])
def test_cuda_training_in_bf16_matches_the_cpu_detector(
    tmp_path: Path, compile_mode: str | None
) -> None:
    data = normal_set(20)
    fit(
        data,
        tmp_path,
        model_config=ModelConfig(image_size=32),
        train_config=_config(compile=compile_mode),
    )
    on_gpu, on_cpu = load(tmp_path, device="cuda"), load(tmp_path, device="cpu")
    images = torch.rand(4, 3, 32, 32)
    gpu_scores = on_gpu.score(images.cuda()).score.cpu()
    assert torch.isfinite(gpu_scores).all()
    # scoring runs in float32 on both devices; only the kernels differ
    torch.testing.assert_close(gpu_scores, on_cpu.score(images).score, rtol=1e-3, atol=1e-4)


def test_fp16_training_with_the_gradient_scaler(tmp_path: Path) -> None:
    result = fit(
        normal_set(20),
        tmp_path,
        model_config=ModelConfig(image_size=32),
        train_config=_config(precision="fp16"),
    )
    assert result.last_epoch["loss"] == result.last_epoch["loss"]  # not NaN
