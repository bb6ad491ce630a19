"""How to train (:class:`TrainConfig`, the paper's Table 1) and what :func:`~piade.train.run` returns."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from piade.config import (
    DEFAULT_LOSS_CONVENTION,
    LOSS_CONVENTIONS,
    check_field_types,
    check_perceptual_depth,
)
from piade.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")
# Adam's learning rate over the epochs: the paper's constant rate, or a half cosine from it to 0
LR_SCHEDULES = ("constant", "cosine")
# The files of a run directory (see piade.train)
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RUN = "run.json"
# What runs saved before a training setting existed did: they resume and compare as that
TRAIN_LEGACY_VALUES: dict[str, Any] = {
    "routing_weight_decay": None,
    "perceptual_depth": 4,
    "loss_convention": "design",
    "lr_schedule": "constant",
}


def with_legacy_train_values(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a saved training config) with the settings it predates filled in as they were."""
    return {**TRAIN_LEGACY_VALUES, **values}


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train. Defaults are the paper's Table 1 and Sec. 3.2 (λ1 = λ2 = 1)."""

    epochs: int = 400
    batch_size: int = 120  # global: split across DDP processes
    lr: float = 1e-3  # Adam
    lr_schedule: str = "constant"  # LR_SCHEDULES; the paper's Table 1 gives one rate
    weight_decay: float = 1e-4
    # weight decay of the routing matrices W_ij alone; None: weight_decay (the paper has one value)
    routing_weight_decay: float | None = None
    perceptual_weight: float = 1.0  # λ1
    ssim_weight: float = 1.0  # λ2
    perceptual_net: str = "vgg11"
    # modules of the VGG's ``features`` kept (the paper: VGG-11's first four, ending at conv2_1)
    perceptual_depth: int = 4
    perceptual_weights: str | None = "imagenet"
    loss_convention: str = DEFAULT_LOSS_CONVENTION  # the terms' units: LOSS_CONVENTIONS
    encoder_weights: str | None = "imagenet"
    device: str = "auto"
    precision: str = "auto"  # autocast: auto (GPU: bf16 if supported; CPU: fp32), fp32, bf16, fp16
    seed: int = 0
    checkpoint_every: int = 10  # epochs
    calibration_fraction: float = 0.1  # of the training images, held out to calibrate the score
    threshold_quantile: float = 0.99  # of held-out normal scores; the decision threshold
    map_sigma: float | None = None  # σ (px) of the anomaly map's smoothing; None: image side / 30
    map_kind: str = "ssim"  # anomaly map: ssim (best on MVTec bottle, docs/engine.md), combined, perceptual or mse
    # batch-norm statistics of the model file: exact over the training images (True), training's
    # running averages (False), or whichever reconstructs the training images better (None)
    precise_bn: bool | None = None
    # image score (piade.config.SCORE_KINDS): "loss" is the paper's; "loss-x-map" had the best mean
    # on bottle, COIL-20 and CIFAR-10 and was within 0.002 of the best kind on each (docs/engine.md)
    score_kind: str = "loss-x-map"
    compile: str | None = None  # torch.compile mode of the training step (COMPILE_MODES), or None

    def __post_init__(self) -> None:
        check_field_types(self)
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 2,
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "routing_weight_decay": (self.routing_weight_decay or 0.0) >= 0,
            "perceptual_weight": 0 <= self.perceptual_weight < math.inf,
            "ssim_weight": 0 <= self.ssim_weight < math.inf,
            "checkpoint_every": self.checkpoint_every >= 1,
            "calibration_fraction": 0 < self.calibration_fraction < 1,
            "threshold_quantile": 0 < self.threshold_quantile <= 1,
            "compile": self.compile is None or self.compile in COMPILE_MODES,
            "lr_schedule": self.lr_schedule in LR_SCHEDULES,
            "loss_convention": self.loss_convention in LOSS_CONVENTIONS,
            "map_sigma": self.map_sigma is None or self.map_sigma >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
            raise ConfigError(
                f"invalid training setting(s): {values} (epochs >= 1, batch_size >= 2,"
                " lr > 0, weights >= 0, 0 < calibration_fraction < 1, 0 < threshold_quantile <= 1, map_sigma >= 0,"
                f" compile one of {', '.join(COMPILE_MODES)},"
                f" lr_schedule one of {', '.join(LR_SCHEDULES)},"
                f" loss_convention one of {', '.join(LOSS_CONVENTIONS)})"
            )
        check_perceptual_depth(self.perceptual_net, self.perceptual_depth)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def learning_rate(self, epoch: int) -> float:
        """Adam's rate during ``epoch`` (0-based): ``lr`` throughout, or ``lr`` times
        (1 + cos(π · epoch / epochs)) / 2 under ``"cosine"`` (Loshchilov & Hutter's annealing
        without restarts, one step per epoch), so a resumed run continues on the same curve."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * (1 + math.cos(math.pi * epoch / self.epochs)) / 2


@dataclass(frozen=True)
class FitResult:
    """Where :func:`fit` put its outputs, and the last epoch's metrics."""

    out_dir: Path
    model_path: Path  # written by the main process only
    last_epoch: dict[str, float]
    model: nn.Module  # the trained network (in this process)
