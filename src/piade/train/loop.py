"""The epoch loop of the paper's recipe (Table 1): batches, steps, checks and batch-norm statistics.

:func:`piade.train.run` drives it; everything here works on one process's share of an epoch (DDP
shards the permutation by rank).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from piade.errors import ConfigError, PiadeError
from piade.inference.scoring import score_images
from piade.losses import LossTerms, ReconstructionLoss
from piade.preprocess import to_signed
from piade.runtime import Distributed, autocast, memory_format, quiet_compiler_notices
from piade.runtime import compile_advice as runtime_compile_advice
from piade.train.checkpoint import CHECKPOINT

log = logging.getLogger(__name__)
Network = TypeVar("Network", bound=nn.Module)
# the most memory training spends on keeping the perceptual network's features of its images
PERCEPTUAL_TARGETS_BUDGET = 2 * 2**30


class TrainingError(PiadeError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the last good checkpoint is kept."""


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
    model: nn.Module,
    criterion: ReconstructionLoss,
    batch: torch.Tensor,
    amp: torch.dtype | None,
    target_features: torch.Tensor | None = None,
) -> LossTerms:
    """The loss terms of one batch (B, 3, H, W) in [0, 1]: the forward half of a training step.

    ``target_features``: the perceptual network's features of ``batch``, if computed beforehand
    (:func:`perceptual_targets`); otherwise the loss computes them.
    """
    with autocast(batch.device, amp):
        out = model(batch)
    return criterion(to_signed(batch), out.reconstruction.float(), target_features)


def perceptual_targets(
    criterion: ReconstructionLoss,
    images: torch.Tensor,
    *,
    batch_size: int,
    budget_bytes: int = PERCEPTUAL_TARGETS_BUDGET,
) -> torch.Tensor | None:
    """The perceptual network's features of every uint8 training image (N, 3, H, W), or None.

    The network is frozen and the images do not change from one epoch to the next, so their
    features are the same at every step: computed once here, a training step runs the network on
    the reconstructions only (1.1x–1.2x faster steps at 120 px, docs/performance.md). Returns
    None, and the loss computes them at each step as before, when they would take more than
    ``budget_bytes`` (e.g. VGG-16's 64 channels at 256 px: 16.8 MB per image).
    """
    layout = memory_format(images.device)
    with torch.no_grad():
        one = criterion.perceptual_features(to_signed(images[:1].float() / 255))
        needed = one.element_size() * one.numel() * len(images)
        if needed > budget_bytes:
            log.info(
                "the perceptual features of the %d training images would take %.0f MB (over "
                "%.0f MB): computed at every step instead",
                len(images), needed / 2**20, budget_bytes / 2**20,
            )  # fmt: skip
            return None
        features = torch.empty((len(images), *one.shape[1:]), device=images.device)
        features = features.contiguous(memory_format=layout)
        for start in range(0, len(images), max(1, batch_size)):
            batch = images[start : start + max(1, batch_size)].float() / 255
            batch = to_signed(batch.contiguous(memory_format=layout))
            features[start : start + len(batch)] = criterion.perceptual_features(batch)
    log.info(
        "kept the perceptual features of the %d training images (%.0f MB): each step runs the "
        "perceptual network on the reconstructions only",
        len(images), needed / 2**20,
    )  # fmt: skip
    return features


def compiled_loss_terms(mode: str | None) -> Callable[..., LossTerms]:
    """:func:`loss_terms`, compiled with ``torch.compile(mode=mode)`` unless ``mode`` is None.

    Compiling fuses the loss's many element-wise operations (SSIM, the feature differences) and the
    network's batch norms and activations; ``reduce-overhead`` also records CUDA graphs on a GPU.
    The first batch of each shape pays the compilation (about a minute on a 2-core CPU).
    """
    if mode is None:
        return loss_terms
    quiet_compiler_notices()
    return torch.compile(loss_terms, mode=mode)


def compile_advice(mode: str | None, error: Exception) -> str:
    """The one-line message for a failed ``torch.compile`` of the training step."""
    return runtime_compile_advice(f"--compile {mode}", error, "train without --compile")


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
    target_features: torch.Tensor | None = None,
) -> dict[str, float]:
    """One pass over ``batches`` of the uint8 ``images`` (N, 3, H, W); returns summed terms.

    ``forward`` computes a batch's loss terms (:func:`loss_terms` or its compiled form);
    ``target_features`` are :func:`perceptual_targets` of ``images``, or None. Give the
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
        index = index.to(device)
        batch = images[index].float() / 255  # (B, 3, H, W) in [0, 1]
        batch = batch.contiguous(memory_format=layout)
        targets = None if target_features is None else target_features[index]
        terms = forward(model, criterion, batch, amp, targets)
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


def choose_batch_norm(
    model: Network,
    criterion: ReconstructionLoss,
    images: torch.Tensor,
    batch_size: int,
    *,
    always: bool,
) -> tuple[Network, dict[str, Any]]:
    """``model`` or a copy whose batch norms hold exact statistics over the uint8 training
    ``images``: the copy when ``always``, else whichever has the lower eval-mode loss on them.

    The exact statistics match what training saw (the 400-epoch bottle model: image AUROC 0.875 ->
    0.937); on a network trained a few steps, the running averages, still close to their initial
    values, can reconstruct better. ``model`` itself (what ``--resume`` continues) is not changed.
    Returns the model and what was chosen, for the model file.
    """
    import copy

    exact = copy.deepcopy(model)
    count = precise_batch_norm(exact, images, batch_size=batch_size)
    losses = {
        "running": mean_loss(model, criterion, images, batch_size),
        "exact": mean_loss(exact, criterion, images, batch_size),
    }
    chosen = "exact" if always or losses["exact"] < losses["running"] else "running"
    log.info(
        "batch norm (%d layers): eval-mode training loss %.4f with running statistics, %.4f with"
        " exact ones over %d images; the model file keeps the %s statistics",
        count, losses["running"], losses["exact"], len(images), chosen,
    )  # fmt: skip
    info = {"statistics": chosen, "training_loss": losses}
    return (exact if chosen == "exact" else model), info


@torch.no_grad()
def mean_loss(
    model: Network, criterion: ReconstructionLoss, images: torch.Tensor, batch_size: int
) -> float:
    """Mean eval-mode total loss over the uint8 ``images``, in batches of ``batch_size``."""
    totals = [
        score_images(model, criterion, batch.float() / 255).terms.total.double().sum()
        for batch in images.split(batch_size)
    ]
    return float(torch.stack(totals).sum()) / len(images)
