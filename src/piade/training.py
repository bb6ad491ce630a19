"""Training: the paper's recipe (Table 1) on normal images, with checkpoints, resume and DDP.

:func:`fit` trains on a data set of normal images, holds out a fraction of them to calibrate the
anomaly score, and writes into its output directory:

* ``run.json`` — the resolved model and training settings and the data description;
* ``metrics.jsonl`` — one JSON line per epoch;
* ``checkpoint.pt`` — network + optimiser state, written atomically every N epochs and at the end;
* ``model.safetensors`` — the model file (see :mod:`piade.modelfile`).

Multi-GPU / multi-node: run the same command under ``torchrun``; each process trains on its shard
of every epoch's permutation through :class:`torch.nn.parallel.DistributedDataParallel`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from piade.config import check_field_types
from piade.errors import ConfigError, PiadeError
from piade.losses import LossTerms, ReconstructionLoss
from piade.preprocess import to_signed
from piade.runtime import Distributed, autocast, memory_format

log = logging.getLogger(__name__)

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RUN = "run.json"


class TrainingError(PiadeError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train. Defaults are the paper's Table 1 and Sec. 3.2 (λ1 = λ2 = 1)."""

    epochs: int = 400
    batch_size: int = 120  # global: split across DDP processes
    lr: float = 1e-3  # Adam
    weight_decay: float = 1e-4
    perceptual_weight: float = 1.0  # λ1
    ssim_weight: float = 1.0  # λ2
    perceptual_net: str = "vgg11"
    perceptual_weights: str | None = "imagenet"
    encoder_weights: str | None = "imagenet"
    device: str = "auto"
    precision: str = "auto"  # autocast dtype on GPU: auto (bf16 if supported), fp32, bf16, fp16
    seed: int = 0
    checkpoint_every: int = 10  # epochs
    calibration_fraction: float = 0.1  # of the training images, held out to calibrate the score
    threshold_quantile: float = 0.99  # of held-out normal scores; the decision threshold
    map_sigma: float | None = None  # σ (px) of the anomaly map's smoothing; None: image side / 30
    map_kind: str = "ssim"  # anomaly map: ssim (best on MVTec bottle, docs/engine.md), combined, perceptual or mse
    # batch-norm statistics of the model file: exact over the training images (True), training's
    # running averages (False), or whichever reconstructs the training images better (None)
    precise_bn: bool | None = None
    score_kind: str = "loss"  # image score (piade.scoring.SCORE_KINDS): loss is the paper's
    compile: str | None = None  # torch.compile mode of the training step (COMPILE_MODES), or None

    def __post_init__(self) -> None:
        check_field_types(self)
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "perceptual_weight": 0 <= self.perceptual_weight < math.inf,
            "ssim_weight": 0 <= self.ssim_weight < math.inf,
            "checkpoint_every": self.checkpoint_every >= 1,
            "calibration_fraction": 0 < self.calibration_fraction < 1,
            "threshold_quantile": 0 < self.threshold_quantile <= 1,
            "compile": self.compile is None or self.compile in COMPILE_MODES,
            "map_sigma": self.map_sigma is None or self.map_sigma >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ConfigError(
                f"invalid training setting(s): {values} (epochs >= 1, batch_size >= 2,"
                " lr > 0, weights >= 0, 0 < calibration_fraction < 1, 0 < threshold_quantile <= 1, map_sigma >= 0,"
                f" compile one of {', '.join(COMPILE_MODES)})"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FitResult:
    """Where :func:`fit` put its outputs, and the last epoch's metrics."""

    out_dir: Path
    model_path: Path  # written by the main process only
    last_epoch: dict[str, float]
    model: nn.Module  # the trained network (in this process)


def split_calibration(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of ``n`` training images into (train indices, calibration indices)."""
    if n < 3:
        raise ConfigError(
            f"need at least 3 training images (got {n}): some to train on, some to calibrate the "
            "score; add normal images"
        )
    n_cal = min(n - 2, max(1, round(n * fraction)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[n_cal:].sort().values, order[:n_cal].sort().values


def epoch_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, ddp: Distributed
) -> list[torch.Tensor]:
    """This process's batches of one epoch: a permutation seeded by (seed, epoch), sharded by rank.

    Batches of one image are dropped (batch norm needs two); every rank gets as many batches.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    per_rank = n // ddp.world_size
    local = order[: per_rank * ddp.world_size][ddp.rank :: ddp.world_size]
    step = max(2, batch_size // ddp.world_size)
    return [b for b in local.split(step) if len(b) >= 2]


def loss_terms(
    model: nn.Module, criterion: ReconstructionLoss, batch: torch.Tensor, amp: torch.dtype | None
) -> LossTerms:
    """The loss terms of one batch (B, 3, H, W) in [0, 1]: the forward half of a training step."""
    with autocast(batch.device, amp):
        out = model(batch)
    return criterion(to_signed(batch), out.reconstruction.float())


def compiled_loss_terms(mode: str | None) -> Callable[..., LossTerms]:
    """:func:`loss_terms`, compiled with ``torch.compile(mode=mode)`` unless ``mode`` is None.

    Compiling fuses the loss's many element-wise operations (SSIM, the feature differences) and the
    network's batch norms and activations; ``reduce-overhead`` also records CUDA graphs on a GPU.
    The first batch of each shape pays the compilation (about a minute on a 2-core CPU).
    """
    if mode is None:
        return loss_terms
    notices = logging.getLogger("torch.utils.cpp_extension")
    if not any(isinstance(f, _NoCudaRuntimeNotice) for f in notices.filters):
        notices.addFilter(_NoCudaRuntimeNotice())
    return torch.compile(loss_terms, mode=mode)


class _NoCudaRuntimeNotice(logging.Filter):
    """Drops torch's "No CUDA runtime is found" warning: compiling for the CPU with a CUDA build of
    PyTorch is normal and needs no CUDA runtime, but the warning reads like an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No CUDA runtime is found" not in record.getMessage()


def compile_advice(mode: str | None, error: Exception) -> str:
    """The one-line message for a failed ``torch.compile`` of the training step."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return (
        f"--compile {mode} failed ({first}); train without --compile, or install what "
        "torch.compile needs (a C++ compiler on CPU, Triton on GPU)"
    )


def train_epoch(
    model: nn.Module,
    criterion: ReconstructionLoss,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    batches: list[torch.Tensor],
    *,
    amp: torch.dtype | None,
    scaler: torch.amp.GradScaler | None,
    on_batch: Callable[[], None] = lambda: None,
    forward: Callable[..., LossTerms] = loss_terms,
    check_every_batch: bool | None = None,
) -> dict[str, float]:
    """One pass over ``batches`` of the uint8 ``images`` (N, 3, H, W); returns summed terms.

    ``forward`` computes a batch's loss terms (:func:`loss_terms` or its compiled form). Give the
    batches' indices on the images' device: on a GPU the epoch then makes no host-device copy and
    no synchronisation: the loss is checked for NaN at the end of the epoch, and after every batch
    only where ``check_every_batch`` says so (default: on the CPU, where the check costs nothing).
    """
    model.train()
    device = images.device
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # total, mse, perceptual, ssim
    layout, seen = memory_format(device), 0
    if check_every_batch is None:
        check_every_batch = device.type == "cpu"
    for index in batches:
        batch = images[index.to(device)].float() / 255  # (B, 3, H, W) in [0, 1]
        batch = batch.contiguous(memory_format=layout)
        terms = forward(model, criterion, batch, amp)
        loss = terms.total.mean()
        if check_every_batch and not torch.isfinite(loss):
            raise TrainingError("the loss became non-finite")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            sums += torch.stack([terms.total, terms.mse, terms.perceptual, terms.ssim]).sum(1)
        seen += len(index)
        on_batch()
    totals = sums.tolist()
    if not all(math.isfinite(value) for value in totals):
        raise TrainingError("the loss became non-finite")
    return dict(zip(("n", "loss", "mse", "perceptual", "ssim"), [seen, *totals], strict=True))


@torch.no_grad()
def precise_batch_norm(model: nn.Module, images: torch.Tensor, *, batch_size: int) -> int:
    """Set every batch norm's running statistics to their exact average over ``images``.

    During training the running statistics are an exponential average (momentum 0.1) over batches
    computed with ever-changing weights; with few optimiser steps per epoch (2 at the paper's batch
    of 120 on MVTec bottle) they trail the final weights, and eval-mode outputs differ from what
    training saw (docs/training.md: eval MSE 0.048 against 0.0022 before this pass). This pass runs
    the uint8 ``images`` (N, 3, H, W) through the model in training mode, in batches of
    ``batch_size``, and keeps the cumulative average of each batch's statistics ("precise BN",
    as ``torch.optim.swa_utils.update_bn`` does). No weight changes. Returns how many batch norms.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    was_training = model.training
    model.train()
    layout = memory_format(images.device)
    batches = [b for b in images.split(max(2, batch_size)) if len(b) >= 2]
    for batch in batches:
        model((batch.float() / 255).contiguous(memory_format=layout))
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return len(norms)


def check_finite_parameters(model: nn.Module) -> None:
    """TrainingError when a parameter or buffer holds NaN or inf (never checkpoint such weights).

    One synchronisation with the device for all tensors, then the first bad one is named.
    """
    named = [
        (name, tensor)
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]
        if tensor.is_floating_point()
    ]
    if not named:
        return
    finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named])
    if not bool(finite.all()):
        first = int((~finite).nonzero()[0])
        raise TrainingError(f"the weights of {named[first][0]} became non-finite")


def non_finite_advice(
    error: TrainingError, *, epoch: int, out: Path, saved_epoch: int, lr: float
) -> str:
    """The message for a run stopped by a non-finite loss or weights: where, what is kept, what to do."""
    if saved_epoch == 0:
        return (
            f"{error} in epoch {epoch}; no checkpoint was written yet. Start again with a lower "
            f"learning rate (e.g. --lr {lr / 10:g}) in a new --out folder, or check the data"
        )
    return (
        f"{error} in epoch {epoch}; the last good checkpoint (epoch {saved_epoch}) is kept in "
        f"{out / CHECKPOINT}. Continue from it with a lower learning rate: piade fit --resume "
        f"--out {out} --lr {lr / 10:g} (or check the data)"
    )
