"""Image anomaly scores and per-pixel anomaly maps: pure functions of a model and a loss.

The image score is the paper's: the per-image total loss with the evaluation-time (longest) vector.
The anomaly map is built from per-pixel residuals between an image and its reconstruction:

* ``ssim``: 1 − the SSIM map (mean over channels);
* ``mse``: the squared error (mean over channels, in the [-1, 1] range);
* ``perceptual``: the squared difference of the perceptual network's features (mean over feature
  channels), bilinearly upsampled to the image size;
* ``combined``: ``ssim / s_ssim + perceptual / s_perceptual``, each residual divided by its mean on
  held-out normal images so the two count alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from piade.losses import LossTerms, ReconstructionLoss
from piade.model.network import ModelOutput
from piade.preprocess import to_signed
from piade.runtime import memory_format

MAP_KINDS = ("combined", "ssim", "perceptual", "mse")
RESIDUALS = ("ssim", "perceptual", "mse")


class RawScores(NamedTuple):
    """Everything one scoring pass computes, before calibration.

    Attributes:
        terms: the per-image loss terms (``terms.total`` is the anomaly score), each (B,).
        residuals: per-pixel residual maps by name ("ssim", "perceptual", "mse"), each (B, H, W).
        output: the network's output (eval mode: the longest vector was decoded).
    """

    terms: LossTerms
    residuals: dict[str, torch.Tensor]
    output: ModelOutput


def anomaly_residuals(
    residuals: Mapping[str, torch.Tensor], size: tuple[int, int]
) -> dict[str, torch.Tensor]:
    """Turn the loss's residual maps into anomaly residuals (B, H, W), higher = more anomalous."""
    perceptual = F.interpolate(
        residuals["perceptual"][:, None], size=size, mode="bilinear", align_corners=False
    )  # (B, 1, H, W)
    return {"ssim": 1 - residuals["ssim"], "perceptual": perceptual[:, 0], "mse": residuals["mse"]}


def combine_maps(
    residuals: Mapping[str, torch.Tensor], kind: str, scales: Mapping[str, float]
) -> torch.Tensor:
    """The anomaly map of ``kind`` (one of :data:`MAP_KINDS`) from the residuals, (B, H, W)."""
    if kind == "combined":
        return residuals["ssim"] / scales["ssim"] + residuals["perceptual"] / scales["perceptual"]
    if kind not in RESIDUALS:
        raise ValueError(f"anomaly map kind must be one of {MAP_KINDS}, got {kind!r}")
    return residuals[kind]


@torch.no_grad()
def score_images(
    model: nn.Module, criterion: ReconstructionLoss, images: torch.Tensor
) -> RawScores:
    """Score images (B, 3, H, W) in [0, 1] with the model in eval mode (longest vector decoded)."""
    images = images.contiguous(memory_format=memory_format(images.device))
    was_training = model.training
    model.eval()
    try:
        output = model(images)
    finally:
        model.train(was_training)
    residuals = criterion.residuals(to_signed(images), output.reconstruction.float())
    size = (images.shape[-2], images.shape[-1])
    return RawScores(criterion.terms(residuals), anomaly_residuals(residuals, size), output)
