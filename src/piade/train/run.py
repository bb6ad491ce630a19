"""One training run: :func:`fit` composes data, network, loss and the epoch loop, then chooses the
batch-norm statistics, calibrates and writes the model file.

See :mod:`piade.train` for the files a run directory holds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from piade.config import ModelConfig
from piade.data.dataset import ImageSet, stack_images
from piade.errors import ConfigError
from piade.inference.calibration import calibrate, expected_false_alarm_rate
from piade.inference.detector import Detector
from piade.inference.modelfile import MODEL_FILENAME
from piade.inference.scoring import (
    default_map_sigma,
)
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model
from piade.runtime import (
    Distributed,
    autocast_dtype,
    distributed_context,
    is_compiler_error,
    memory_format,
    resolve_device,
    seed_everything,
)
from piade.train.checkpoint import (
    CHECKPOINT,
    METRICS,
    prepare_run,
    save_checkpoint,
)
from piade.train.config import FitResult, TrainConfig
from piade.train.loop import (
    TrainingError,
    check_finite_parameters,
    choose_batch_norm,
    compile_advice,
    compiled_loss_terms,
    epoch_batches,
    non_finite_advice,
    perceptual_targets,
    split_calibration,
    train_epoch,
)

log = logging.getLogger(__name__)


def _fit_arguments(
    train_set: object, out_dir: object, model_config: object, train_config: object
) -> torch.Tensor:
    """The training images (N, 3, S, S) uint8, or a ConfigError naming the bad argument."""
    if not isinstance(model_config, ModelConfig):
        hint = " (ModelConfig.from_dict(d) makes one)" if isinstance(model_config, dict) else ""
        raise ConfigError(
            f"model_config: expected a piade.ModelConfig, got {type(model_config).__name__}{hint}"
        )
    if not isinstance(train_config, TrainConfig):
        hint = " (TrainConfig(**d) makes one)" if isinstance(train_config, dict) else ""
        raise ConfigError(
            f"train_config: expected a piade.TrainConfig, got {type(train_config).__name__}{hint}"
        )
    if not isinstance(out_dir, str | os.PathLike):
        raise ConfigError(f"out_dir: expected a folder path, got {type(out_dir).__name__}")
    try:
        images = stack_images(train_set)  # type: ignore[arg-type]
    except (TypeError, IndexError, KeyError, AttributeError, RuntimeError) as error:
        raise ConfigError(
            "train_set: expected a piade data set (a length, and items holding an 'image' float"
            " tensor (3, H, W) in [0, 1]; piade.data.build_datasets makes one), got"
            f" {type(train_set).__name__} ({type(error).__name__}: {error})"
        ) from error
    size = model_config.image_size
    if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
        raise ConfigError(
            f"train_set: its images are {tuple(images.shape[1:])} but model_config.image_size is"
            f" {size}; build the data set at image_size={size}"
        )
    crop = getattr(train_set, "center_crop", 1.0)
    if crop != model_config.center_crop:
        raise ConfigError(
            f"train_set: its images were cut to the central {crop:g} of each side but"
            f" model_config.center_crop is {model_config.center_crop:g}; build the data set with"
            f" center_crop={model_config.center_crop:g}"
        )
    return images


def fit(
    train_set: ImageSet,
    out_dir: str | os.PathLike[str],
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    data_info: dict[str, Any] | None = None,
    resume: bool = False,
    validation_set: ImageSet | None = None,
) -> FitResult:
    """Train on the normal images of ``train_set`` and write a run directory (see :mod:`piade.train`).

    ``validation_set`` (labelled, never the test set) switches the threshold from the quantile of
    held-out normal scores to the F1-optimal one on that set.
    """
    checked = _fit_arguments(train_set, out_dir, model_config, train_config)
    out = Path(out_dir)
    cfg = train_config
    device = resolve_device(cfg.device)
    autocast_dtype(cfg.precision, device)  # e.g. bf16 on a CPU without it: refused before writing
    with distributed_context(device) as ddp:
        seed_everything(cfg.seed)
        images = checked.to(device)
        fit_idx, cal_idx = split_calibration(len(images), cfg.calibration_fraction, cfg.seed)
        model, criterion = _build(model_config, cfg, device)
        optimizer = torch.optim.Adam(_parameter_groups(model, cfg), lr=cfg.lr)
        run = {"model": model_config.to_dict(), "train": cfg.to_dict(), "data": data_info or {}}
        start = prepare_run(out, run, model, optimizer, resume=resume, is_main=ddp.is_main)
        epochs = _Epochs(out, run, cfg, model, criterion, optimizer, ddp)
        last = epochs.train(images, fit_idx, start)
        if ddp.is_main:
            _write_model_file(out, run, cfg, model, criterion, images, fit_idx, cal_idx,
                              validation_set)  # fmt: skip
        return FitResult(out, out / MODEL_FILENAME, last, model)


def _parameter_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Adam's parameter groups: the routing matrices apart when they have their own weight decay."""
    if cfg.routing_weight_decay is None:
        return [{"params": list(model.parameters()), "weight_decay": cfg.weight_decay}]
    routing = [p for name, p in model.named_parameters() if name.startswith("routing.")]
    others = [p for name, p in model.named_parameters() if not name.startswith("routing.")]
    if not routing:
        raise ConfigError("routing_weight_decay: this network has no routing matrices")
    return [
        {"params": others, "weight_decay": cfg.weight_decay},
        {"params": routing, "weight_decay": cfg.routing_weight_decay},
    ]


def _build(
    model_config: ModelConfig, cfg: TrainConfig, device: torch.device
) -> tuple[nn.Module, ReconstructionLoss]:
    """The network and the paper's loss, on ``device`` in its preferred memory layout."""
    layout = memory_format(device)
    model = build_model(model_config, encoder_weights=cfg.encoder_weights)
    model = model.to(device).to(memory_format=layout)
    perceptual = build_perceptual_network(
        cfg.perceptual_net, weights=cfg.perceptual_weights, depth=cfg.perceptual_depth
    )
    criterion = ReconstructionLoss(
        perceptual,
        perceptual_weight=cfg.perceptual_weight,
        ssim_weight=cfg.ssim_weight,
        convention=cfg.loss_convention,
    )
    return model, criterion.to(device).to(memory_format=layout)


class _Epochs:
    """The epochs of one run: each is trained, logged to ``metrics.jsonl`` and checkpointed."""

    def __init__(
        self,
        out: Path,
        run: dict[str, Any],
        cfg: TrainConfig,
        model: nn.Module,
        criterion: ReconstructionLoss,
        optimizer: torch.optim.Optimizer,
        ddp: Distributed,
    ) -> None:
        self.out, self.run, self.cfg, self.ddp = out, run, cfg, ddp
        self.model, self.criterion, self.optimizer = model, criterion, optimizer
        device = next(model.parameters()).device
        self.amp = autocast_dtype(cfg.precision, device)
        self.scaler = torch.amp.GradScaler(device.type) if self.amp == torch.float16 else None
        self.trained: nn.Module = DistributedDataParallel(model) if ddp.enabled else model
        self.forward = compiled_loss_terms(cfg.compile)
        self.targets: torch.Tensor | None = None  # the perceptual features of the images
        if cfg.compile is not None:
            log.info(
                "compiling the training step (mode %s): the first batches take a minute or more",
                cfg.compile,
            )

    def train(self, images: torch.Tensor, fit_idx: torch.Tensor, start: int) -> dict[str, float]:
        """Train epochs ``start`` to ``cfg.epochs`` on ``images[fit_idx]``; the last epoch's record."""
        cfg, last, saved = self.cfg, {}, start  # saved: the epoch of the last good checkpoint
        if start < cfg.epochs:
            self.targets = perceptual_targets(self.criterion, images, batch_size=cfg.batch_size)
        bar = tqdm(range(start, cfg.epochs), desc="fit", unit="epoch", initial=start,
                   total=cfg.epochs, disable=None if self.ddp.is_main else True)  # fmt: skip
        for epoch in bar:
            tic = time.perf_counter()
            sums = self._epoch(images, fit_idx, epoch, saved)
            if self.ddp.enabled:  # batch-norm statistics: every process keeps the main process's
                for buffer in self.model.buffers():
                    torch.distributed.broadcast(buffer, src=0)
            last = _epoch_record(
                sums, epoch, time.perf_counter() - tic, self.optimizer, self.ddp.enabled
            )
            bar.set_postfix(loss=f"{last['loss']:.4f}")
            if self.ddp.is_main:
                with (self.out / METRICS).open("a") as handle:
                    handle.write(json.dumps(last) + "\n")
                if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                    self._checkpoint(epoch + 1)
                    saved = epoch + 1
        bar.close()
        return last

    def _epoch(
        self, images: torch.Tensor, fit_idx: torch.Tensor, epoch: int, saved: int
    ) -> dict[str, float]:
        """One epoch's loss sums; a failure becomes one ConfigError or TrainingError with advice."""
        cfg = self.cfg
        batches = epoch_batches(len(fit_idx), cfg.batch_size, seed=cfg.seed, epoch=epoch,
                                ddp=self.ddp)  # fmt: skip
        batches = [fit_idx[b] for b in batches]
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate(epoch)
        if batches:  # one copy of the epoch's order to the device, none per batch
            on_device = torch.cat(batches).to(images.device, non_blocking=True)
            batches = list(on_device.split([len(b) for b in batches]))
        try:
            sums = train_epoch(self.trained, self.criterion, self.optimizer, images, batches,
                               amp=self.amp, scaler=self.scaler, forward=self.forward,
                               target_features=self.targets)  # fmt: skip
            check_finite_parameters(self.model)
        except Exception as error:
            if is_compiler_error(error):
                raise ConfigError(compile_advice(cfg.compile, error)) from error
            if not isinstance(error, TrainingError):
                raise
            advice = non_finite_advice(error, epoch=epoch + 1, out=self.out, saved_epoch=saved,
                                       lr=cfg.lr)  # fmt: skip
            raise TrainingError(advice) from error
        return sums

    def _checkpoint(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "run": json.dumps(self.run),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }
        save_checkpoint(self.out / CHECKPOINT, state)


def _write_model_file(
    out: Path,
    run: dict[str, Any],
    cfg: TrainConfig,
    model: nn.Module,
    criterion: ReconstructionLoss,
    images: torch.Tensor,
    fit_idx: torch.Tensor,
    cal_idx: torch.Tensor,
    validation_set: ImageSet | None,
) -> None:
    """After the last epoch: choose the batch-norm statistics, calibrate, write ``model.safetensors``."""
    batch_norm: dict[str, Any] = {"statistics": "running"}
    if cfg.precise_bn is not False:  # checkpoints keep training's statistics
        model, batch_norm = choose_batch_norm(
            model, criterion, images[fit_idx], cfg.batch_size, always=cfg.precise_bn is True
        )
    validation = None
    if validation_set is not None:
        labels = np.asarray(validation_set.labels)  # type: ignore[attr-defined]
        validation = (stack_images(validation_set), labels)
    calibration = calibrate(
        model,
        criterion,
        images[cal_idx],
        quantile=cfg.threshold_quantile,
        map_kind=cfg.map_kind,
        score_kind=cfg.score_kind,
        map_sigma=default_map_sigma(images.shape[-1]) if cfg.map_sigma is None else cfg.map_sigma,
        validation=validation,
    )
    if validation is None:
        _warn_if_few_to_calibrate(len(cal_idx), cfg)
    info = {
        "loss": {"perceptual_net": cfg.perceptual_net, "perceptual_depth": cfg.perceptual_depth},
        "training": run,
        "batch_norm": batch_norm,
    }
    Detector(model, criterion, calibration, info=info).save(out / MODEL_FILENAME)
    log.info("model written to %s", out / MODEL_FILENAME)


def _warn_if_few_to_calibrate(n_images: int, cfg: TrainConfig) -> None:
    """Say so when too few held-out images set the threshold for its quantile to mean what it says."""
    q = cfg.threshold_quantile
    rate = expected_false_alarm_rate(n_images, q)
    if rate > 2 * (1 - q):
        log.warning(
            "the threshold is the %g quantile of only %d held-out normal %s, so about %.2g %% "
            "of new normal images will score above it (not %.2g %%); hold out more "
            "(--calibration-fraction, now %g) or set it on labelled images "
            "(piade.fit(..., validation_set=...))",
            q, n_images, "image" if n_images == 1 else "images", 100 * rate, 100 * (1 - q), cfg.calibration_fraction,
        )  # fmt: skip


def _epoch_record(
    sums: dict[str, float],
    epoch: int,
    seconds: float,
    optimizer: torch.optim.Optimizer,
    distributed: bool,
) -> dict[str, float]:
    values = torch.tensor(
        [sums[k] for k in ("n", "loss", "mse", "perceptual", "ssim")], dtype=torch.float64
    )
    if distributed:
        torch.distributed.all_reduce(values)
    n = max(values[0].item(), 1.0)
    record: dict[str, float] = {"epoch": epoch + 1, "images": int(values[0].item())}
    record |= {
        k: values[i].item() / n for i, k in enumerate(("loss", "mse", "perceptual", "ssim"), 1)
    }
    record |= {
        "lr": optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "images_per_s": values[0].item() / max(seconds, 1e-9),
    }
    return record
