"""A ready-to-use detector: network + loss + calibration, loaded from a model file.

``piade.load(path).score(images)`` gives, per image, the model file's image score (its
calibration's ``score_kind``; the paper's is ``"loss"``), the paper's loss terms, a score
normalised with the calibration statistics, a label from the calibrated threshold, and a
per-pixel anomaly map.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from piade.config import ModelConfig, with_legacy_values
from piade.data.dataset import ImageSet, stack_images
from piade.errors import ConfigError
from piade.inference.calibration import Calibration
from piade.inference.modelfile import ModelFileError, read_model_file, write_model_file
from piade.inference.scoring import (
    MAP_KINDS,
    RESIDUALS,
    SCORE_KINDS,
    CompiledScoring,
    RawScores,
    anomaly_map,
    image_score,
    score_images,
)
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.runtime import (
    autocast_dtype,
    compile_advice,
    is_compiler_error,
    memory_format,
    resolve_device,
)

log = logging.getLogger(__name__)


class Detection(NamedTuple):
    """Per-image results of :meth:`Detector.score` (B images at the model's input size)."""

    score: torch.Tensor  # (B,) of calibration.score_kind (docs/engine.md)
    mse: torch.Tensor  # (B,)
    perceptual: torch.Tensor  # (B,)
    ssim: torch.Tensor  # (B,) SSIM index
    normalized_score: torch.Tensor  # (B,) z-score w.r.t. held-out normal images
    label: torch.Tensor  # (B,) int64, 1 = anomalous (score > threshold)
    anomaly_map: torch.Tensor  # (B, H, W)
    reconstruction: torch.Tensor  # (B, 3, H, W) in [0, 1]
    lengths: torch.Tensor  # (B, num_vectors)
    decoded: torch.Tensor  # (B,)


class Detector:
    """A trained network with its loss and calibration, ready to score images."""

    def __init__(
        self,
        model: nn.Module,
        criterion: ReconstructionLoss,
        calibration: Calibration,
        *,
        info: dict[str, Any] | None = None,
        precision: str = "fp32",
        compile: bool = False,
    ) -> None:
        self.model = model.eval()
        self.criterion = criterion
        self.calibration = calibration
        self.info = info or {}
        self.precision = precision  # autocast of the network (runtime.autocast_dtype): fp32 or bf16
        self.compile = compile  # score through CompiledScoring (torch.compile, frozen weights)
        self._compiled: CompiledScoring | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config  # type: ignore[return-value]

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> Detector:
        """Move to ``device``, in the layout piade runs in there (see :func:`memory_format`)."""
        layout = memory_format(torch.device(device))
        self.model.to(device).to(memory_format=layout)
        self.criterion.to(device).to(memory_format=layout)
        self._compiled = None  # compiled for the old place: compile again at the next batch
        return self

    @torch.no_grad()
    def score(self, images: torch.Tensor, *, map_kind: str | None = None) -> Detection:
        """Score images (B, 3, H, W) in [0, 1], H = W = :attr:`image_size`.

        Raises :class:`~piade.errors.ConfigError` (a ``ValueError``) naming what is wrong with
        ``images``: not a tensor, not floating point (uint8 images must be divided by 255), the
        wrong shape, or values outside [0, 1]; or ``map_kind`` when it is not one of
        :data:`~piade.inference.scoring.MAP_KINDS`.
        """
        return self._detect(images, map_kind)[0]

    def score_every_kind(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every image score of :data:`~piade.config.SCORE_KINDS` (B,) from one pass, to compare
        scores on one trained model without retraining; ``score`` gives the calibrated one."""
        return self._every_kind(self._detect(images, None)[1])

    def _every_kind(self, raw: RawScores) -> dict[str, torch.Tensor]:
        cal = self.calibration
        return {
            kind: image_score(raw, kind, map_kind=cal.map_kind, scales=cal.map_scales)
            for kind in SCORE_KINDS
        }

    def _detect(self, images: torch.Tensor, map_kind: str | None) -> tuple[Detection, RawScores]:
        check_images(images, self.image_size)
        if map_kind is not None and (not isinstance(map_kind, str) or map_kind not in MAP_KINDS):
            raise ConfigError(
                f"map_kind: expected None or one of {', '.join(MAP_KINDS)}, got {map_kind!r}"
            )
        amp = autocast_dtype(self.precision, self.device)
        raw = self._score_images(images.to(self.device, torch.float32), amp)
        cal, terms = self.calibration, raw.terms
        heat = anomaly_map(raw.residuals, map_kind or cal.map_kind, cal.map_scales, cal.map_sigma)
        score = image_score(raw, cal.score_kind, map_kind=cal.map_kind, scales=cal.map_scales)
        detection = Detection(
            score,
            terms.mse,
            terms.perceptual,
            terms.ssim,
            cal.normalize(score),
            (score > cal.threshold).long(),
            heat,
            (raw.output.reconstruction.float() + 1) / 2,
            raw.output.lengths,
            raw.output.decoded,
        )
        return detection, raw

    def _score_images(self, images: torch.Tensor, amp: torch.dtype | None) -> RawScores:
        if not self.compile:
            return score_images(self.model, self.criterion, images, amp)
        if self._compiled is None:
            log.info(
                "compiling the scoring pass (--compile): the first batch takes a minute or more"
            )
            self._compiled = CompiledScoring(self.model, self.criterion)
        try:
            return self._compiled(images, amp)
        except Exception as error:
            if is_compiler_error(error):
                raise ConfigError(
                    compile_advice("--compile", error, "score without --compile")
                ) from error
            raise

    def map_at(self, anomaly_map: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Resize maps (B, h, w) to an image's own resolution (bilinear)."""
        return F.interpolate(
            anomaly_map[:, None], size=(height, width), mode="bilinear", align_corners=False
        )[:, 0]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model file (safetensors + JSON metadata) atomically."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {
            f"perceptual.{k}": v for k, v in self.criterion.perceptual_net.state_dict().items()
        }
        info = dict(self.info)
        info["model"] = self.config.to_dict()
        info["loss"] = {
            **info.get("loss", {}),
            "perceptual_weight": self.criterion.perceptual_weight,
            "ssim_weight": self.criterion.ssim_weight,
            "convention": self.criterion.convention,
        }
        info["calibration"] = dataclasses.asdict(self.calibration)
        info["preprocessing"] = {
            "image_size": self.image_size,
            "center_crop": self.config.center_crop,
            "color": "RGB",
            "range": [0.0, 1.0],
            "resize": "bilinear, antialiased",
        }
        write_model_file(path, tensors, info)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str = "cpu",
        precision: str = "fp32",
        compile: bool = False,
    ) -> Detector:
        """Load a model file (or the run directory holding ``model.safetensors``).

        ``precision`` ``bf16`` runs the network in bf16 autocast (a CPU needs bf16 instructions);
        checked here, so a bad one fails before anything is scored. ``compile`` scores through
        :class:`~piade.inference.scoring.CompiledScoring`: the first batch compiles (about a
        minute on a 2-core CPU), later ones run faster; for large folders and long jobs.
        """
        from piade.model import build_model

        if not isinstance(path, str | os.PathLike):
            raise ConfigError(
                f"path: expected a model file or run folder path, got {type(path).__name__}"
            )
        tensors, info = read_model_file(path)
        try:
            config = ModelConfig.from_dict(with_legacy_values(info["model"]))
            loss = info["loss"]
            model = build_model(config, initialise=False)  # the file's weights replace them
            model.load_state_dict(_strip(tensors, "model."))
            perceptual = build_perceptual_network(
                loss.get("perceptual_net", "vgg11"), depth=loss.get("perceptual_depth", 4)
            )
            perceptual.load_state_dict(_strip(tensors, "perceptual."))
            calibration = Calibration(**info["calibration"])
        except (KeyError, TypeError, RuntimeError) as error:
            raise ModelFileError(
                f"{path}: the model file's contents do not match its "
                f"description ({type(error).__name__}: {error})"
            ) from error
        if (
            calibration.map_kind not in MAP_KINDS
            or not set(RESIDUALS) <= set(calibration.map_scales)
            or calibration.score_kind not in SCORE_KINDS
        ):
            raise ModelFileError(
                f"{path}: unknown anomaly map or score settings in the calibration"
            )
        criterion = ReconstructionLoss(
            perceptual,
            perceptual_weight=loss["perceptual_weight"],
            ssim_weight=loss["ssim_weight"],
            convention=loss.get("convention", "design"),  # files before the option: design
        )
        target = resolve_device(device)
        autocast_dtype(precision, target)  # a ConfigError now rather than at the first image
        detector = cls(
            model, criterion, calibration, info=info, precision=precision, compile=compile
        )
        return detector.to(target)


def check_images(images: object, size: int) -> None:
    """ConfigError unless ``images`` is a float tensor (B, 3, size, size) with values in [0, 1]."""
    expected = f"a float tensor (B, 3, {size}, {size}) with values in [0, 1]"
    if not isinstance(images, torch.Tensor):
        hint = " (torch.from_numpy(array) makes one)" if hasattr(images, "__array__") else ""
        raise ConfigError(f"images: expected {expected}, got {type(images).__name__}{hint}")
    if not images.is_floating_point():
        raise ConfigError(
            f"images: expected {expected}, got dtype {images.dtype}"
            + (" (divide uint8 images by 255)" if images.dtype == torch.uint8 else "")
        )
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-2:] != (size, size):
        raise ConfigError(f"images: expected {expected}, got shape {tuple(images.shape)}")
    if not images.shape[0]:
        raise ConfigError(f"images: an empty batch {tuple(images.shape)}; pass at least one image")
    low, high = float(images.min()), float(images.max())  # NaN fails both comparisons
    if not (low >= -1e-6 and high <= 1 + 1e-6):
        raise ConfigError(
            f"images: expected {expected}, got values from {low:.4g} to {high:.4g}"
            " (scale them to [0, 1]; piade normalises internally)"
        )


def load(
    path: str | os.PathLike[str],
    *,
    device: str = "cpu",
    precision: str = "fp32",
    compile: bool = False,
) -> Detector:
    """Load a detector from a model file or a ``piade fit`` output directory."""
    return Detector.load(path, device=device, precision=precision, compile=compile)


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def score_dataset(
    detector: Detector, dataset: ImageSet, *, batch_size: int = 32, keep: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Score every image of a data set; returns NumPy arrays by field name.

    Always: ``score``, ``mse``, ``perceptual``, ``ssim``, ``normalized_score``, ``label`` (predicted),
    ``lengths``, ``decoded``. Add ``anomaly_map`` / ``reconstruction`` to ``keep`` to get those too,
    and ``every_score`` for ``score:KIND``, every kind of image score, from the same pass.
    """
    images = stack_images(dataset)
    fields: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(images.split(batch_size), desc="score", unit="batch", disable=None):
        detection, raw = detector._detect(batch.to(detector.device).float() / 255, None)
        result = detection._asdict()
        if "every_score" in keep:
            result |= {f"score:{k}": v for k, v in detector._every_kind(raw).items()}
        for name, value in result.items():
            if name in ("anomaly_map", "reconstruction") and name not in keep:
                continue
            fields.setdefault(name, []).append(value.cpu().numpy())
    return {k: np.concatenate(v) for k, v in fields.items()}
