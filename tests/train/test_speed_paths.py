"""The speed paths: channels_last layout, glibc's malloc setting, torch.compile of the training step."""

from __future__ import annotations

import copy
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.fakes import TINY_BACKBONE, normal_set

from piade import ModelConfig
from piade.errors import ConfigError
from piade.inference.detector import load
from piade.inference.scoring import score_images
from piade.losses import LossTerms, ReconstructionLoss, build_perceptual_network
from piade.model import build_model
from piade.runtime import keep_freed_memory
from piade.train.config import TrainConfig
from piade.train.loop import TrainingError, loss_terms, perceptual_targets, train_epoch
from piade.train.run import fit

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _config(**overrides: object) -> TrainConfig:
    settings = {
        "epochs": 1,
        "batch_size": 8,
        "encoder_weights": None,
        "perceptual_weights": None,
        "device": "cpu",
        "calibration_fraction": 0.1,
    }
    return TrainConfig(**(settings | overrides))  # type: ignore[arg-type]


def test_channels_last_gives_the_outputs_and_gradients_of_the_default_layout() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_size=32), encoder_weights=None)  # the real SE-ResNet18
    criterion = ReconstructionLoss(build_perceptual_network(weights=None))
    # 8 images: with 4, batch norm over layer4's 1x1 maps (4 values a channel) is so ill-conditioned
    # that channels_last's float32 encoder gradients drift 1 % from float64 (the default layout's
    # 0.05 %); with 8 both layouts are within 7e-4 of float64
    images = torch.rand(8, 3, 32, 32)

    def run(layout: torch.memory_format) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        net = copy.deepcopy(model).to(memory_format=layout)
        loss = copy.deepcopy(criterion).to(memory_format=layout)
        terms = loss_terms(net, loss, images.contiguous(memory_format=layout), None)
        terms.total.sum().backward()
        grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None])
        scored = score_images(net, loss, images)
        return terms.total.detach(), grads, scored.residuals["ssim"]

    total, grads, ssim_map = run(torch.contiguous_format)
    total_cl, grads_cl, ssim_map_cl = run(torch.channels_last)
    # float32 sums over ~10^5 terms in another order: 1.7e-5 relative seen with the default init
    torch.testing.assert_close(total_cl, total, rtol=5e-5, atol=1e-6)
    torch.testing.assert_close(ssim_map_cl, ssim_map, rtol=1e-4, atol=1e-5)
    # float32 against float64 differs by 3e-4 here; noise of 1e-6 on the input moves it by 1e-2
    assert _relative(grads_cl, grads) < 5e-3


def test_fit_and_the_detector_run_in_channels_last(tmp_path: Path) -> None:
    config = ModelConfig(image_size=32, backbone=TINY_BACKBONE)
    result = fit(normal_set(10), tmp_path, model_config=config, train_config=_config())
    convs = [m.weight for m in result.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    detector = load(tmp_path)
    assert all(
        m.weight.is_contiguous(memory_format=torch.channels_last)
        for m in detector.model.modules()
        if isinstance(m, torch.nn.Conv2d)
    )
    scores = detector.score(torch.rand(2, 3, 32, 32)).score
    assert torch.isfinite(scores).all()


FAULTS_SCRIPT = """
import json, resource, sys
import torch
from piade.runtime import keep_freed_memory

def faults_of_a_second_256_mb_tensor():
    torch.empty(2**26).fill_(1.0)  # allocated, touched and freed
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    torch.empty(2**26).fill_(1.0)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before

torch.set_num_threads(1)
if sys.argv[1] == "keep":
    assert keep_freed_memory()
print(json.dumps(min(faults_of_a_second_256_mb_tensor() for _ in range(4))))
"""


@pytest.mark.skipif(not GLIBC, reason="the malloc setting exists only with glibc")
def test_keeping_freed_memory_spares_the_page_faults_of_large_tensors() -> None:
    # Each setting in a fresh process: in this one, earlier tests may have left a large free block
    # in the heap, which malloc reuses (without page faults) whatever the setting. Counted for the
    # measuring thread only, which alone touches the tensor; the fewest of four rounds, as where
    # the heap's top lies after Python's own allocations decides whether a round reuses memory.
    def faults(setting: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", FAULTS_SCRIPT, setting],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ | {"PIADE_MALLOC": ""},
        )
        return int(done.stdout.split()[-1])

    default, kept = faults("default"), faults("keep")
    assert default > 2**26 * 4 // 4096 // 2  # glibc maps every page of it afresh
    assert kept < default / 10


@pytest.mark.skipif(not GLIBC, reason="the malloc setting exists only with glibc")
def test_the_malloc_setting_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIADE_MALLOC", "default")
    assert not keep_freed_memory()


@pytest.mark.slow
@pytest.mark.timeout(900)  # inductor compiles forward and backward in C++: over 300 s on a busy
# 2-core AVX2 machine (2026-12-07, beside a training job), well under on an idle one
def test_a_compiled_training_step_trains_like_the_eager_one(tmp_path: Path) -> None:
    """``--compile`` on the CPU (inductor, C++): the first epoch's losses match the eager run's."""
    config = ModelConfig(image_size=32, backbone=TINY_BACKBONE)
    losses = []
    for mode in (None, "default"):
        out = tmp_path / str(mode)
        fit(normal_set(18), out, model_config=config, train_config=_config(compile=mode))
        losses.append(json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["loss"])
        assert (out / "model.safetensors").exists()
    # the first of the two batches agrees to 1e-6; the second follows one Adam step on gradients
    # that differ as float32 rounding does at initialisation (docs/performance.md)
    assert losses[1] == pytest.approx(losses[0], rel=1e-2)


def test_a_failed_compilation_is_one_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise torch._dynamo.exc.InternalTorchDynamoError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda fn, mode=None: broken)
    config = ModelConfig(image_size=32, backbone=TINY_BACKBONE)
    with pytest.raises(ConfigError, match=r"--compile default failed \(no C\+\+ compiler found\)"):
        fit(normal_set(10), tmp_path, model_config=config, train_config=_config(compile="default"))


def _tiny_step_parts() -> tuple[torch.nn.Module, ReconstructionLoss, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_size=32, backbone=TINY_BACKBONE), encoder_weights=None)
    criterion = ReconstructionLoss(build_perceptual_network(weights=None))
    return model, criterion, torch.optim.Adam(model.parameters())


def test_without_per_batch_checks_a_nan_loss_is_caught_at_the_end_of_the_epoch() -> None:
    """The GPU's way (no synchronisation per batch), run on the CPU."""
    model, criterion, optimizer = _tiny_step_parts()
    images = (torch.rand(8, 3, 32, 32) * 255).to(torch.uint8)
    batches = [torch.arange(0, 4), torch.arange(4, 8)]
    calls = []

    def nan_in_the_first_batch(*args: object) -> LossTerms:
        terms = loss_terms(*args)  # type: ignore[arg-type]
        calls.append(1)
        return terms._replace(total=terms.total * float("nan")) if len(calls) == 1 else terms

    with pytest.raises(TrainingError, match="the loss became non-finite"):
        train_epoch(
            model,
            criterion,
            optimizer,
            images,
            batches,
            amp=None,
            scaler=None,
            forward=nan_in_the_first_batch,
            check_every_batch=False,
        )
    assert len(calls) == 2  # the epoch ran on: no synchronisation after each batch


def test_the_training_step_runs_under_bf16_autocast() -> None:
    """The GPU's precision, on the CPU's bf16 autocast: the same code path and close losses."""
    model, criterion, _ = _tiny_step_parts()
    batch = torch.rand(4, 3, 32, 32)
    full = loss_terms(model, criterion, batch, None).total
    half = loss_terms(model, criterion, batch, torch.bfloat16)
    half.total.sum().backward()
    assert half.total.dtype == torch.float32  # the loss is always computed in float32
    # At initialisation bf16 moves the tiny encoder's output by 3.5 % and the bilinear decoder
    # carries that to the reconstruction (the orthogonal one averages it out): loss within 9 %
    torch.testing.assert_close(half.total.detach(), full.detach(), rtol=0.15, atol=1e-3)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_an_epoch_with_kept_perceptual_features_trains_as_one_that_computes_them() -> None:
    """The features kept before the epoch are the ones each step would compute: same weights.

    (SGD: Adam's first step, ``lr · g / |g|``, turns the rounding of a gradient near zero into a
    step of the full rate either way.)
    """
    model, criterion, _ = _tiny_step_parts()
    images = (torch.rand(10, 3, 32, 32) * 255).to(torch.uint8)
    batches = [torch.tensor([3, 7, 1, 0]), torch.tensor([9, 2, 5, 4])]
    kept = perceptual_targets(criterion, images, batch_size=3)  # batches unlike the epoch's
    assert kept is not None and kept.shape == (10, 128, 16, 16)
    weights = []
    for targets in (None, kept):
        net = copy.deepcopy(model)
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        sums = train_epoch(net, criterion, optimizer, images, batches, amp=None, scaler=None,
                           target_features=targets)  # fmt: skip
        weights.append((sums["loss"], torch.cat([p.detach().flatten() for p in net.parameters()])))
    assert weights[1][0] == pytest.approx(weights[0][0], rel=1e-6)
    torch.testing.assert_close(weights[1][1], weights[0][1], rtol=1e-5, atol=1e-7)


def test_perceptual_features_over_the_budget_are_not_kept(caplog: pytest.LogCaptureFixture) -> None:
    _, criterion, _ = _tiny_step_parts()
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    with caplog.at_level("INFO", logger="piade.train.loop"):  # 4 x 128 x 16 x 16 floats: 512 KiB
        assert perceptual_targets(criterion, images, batch_size=2, budget_bytes=2**19 - 1) is None
    assert "computed at every step instead" in caplog.text
    assert perceptual_targets(criterion, images, batch_size=2, budget_bytes=2**19) is not None
