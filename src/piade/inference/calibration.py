"""The calibration of a detector: statistics of the score on held-out normal images and the
decision threshold (the quantile of those scores, or the F1-optimal one on a labelled validation set).

:func:`calibrate` is run by :func:`piade.train.run` after training; its result travels in the model
file and turns raw scores into normalised ones and verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from piade.errors import ConfigError
from piade.inference.scoring import (
    MAP_KINDS,
    RESIDUALS,
    SCORE_KINDS,
    RawScores,
    anomaly_map,
    image_score,
    score_images,
)
from piade.losses import ReconstructionLoss
from piade.metrics import f1_max


@dataclass(frozen=True)
class Calibration:
    """Statistics of the anomaly score on held-out normal images, and the decision threshold.

    Attributes:
        n_images: how many held-out normal images the statistics come from.
        score_mean, score_std: mean and standard deviation of their scores.
        threshold: scores above it are labelled anomalous.
        threshold_method: how it was chosen, e.g. "quantile:0.99" (of normal scores) or
            "f1-max:validation" (on a labelled validation set, never the test set).
        map_kind: which anomaly map :meth:`Detector.score` returns (see :mod:`piade.inference.scoring`).
        map_scales: the mean of each residual map over the held-out normal images.
        map_normal_p99: the 99th percentile of the chosen map over those images (a display scale).
        score_kind: how an image's score is computed (:data:`piade.inference.scoring.SCORE_KINDS`); "loss",
            the paper's total loss, in model files written before the choice existed.
        map_sigma: σ in pixels of the Gaussian smoothing of the anomaly map; 0 (not smoothed) in
            model files written before the smoothing existed.
    """

    n_images: int
    score_mean: float
    score_std: float
    threshold: float
    threshold_method: str
    map_kind: str
    map_scales: dict[str, float]
    map_normal_p99: float
    score_kind: str = "loss"
    map_sigma: float = 0.0

    def normalize(self, scores: torch.Tensor) -> torch.Tensor:
        """z-scores relative to the held-out normal images."""
        return (scores - self.score_mean) / max(self.score_std, 1e-12)


def threshold_from_normal(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of normal images' scores (linear interpolation)."""
    return float(np.quantile(np.asarray(scores, dtype=np.float64), quantile))


def expected_false_alarm_rate(n_images: int, quantile: float) -> float:
    """About what share of new normal images scores above the ``quantile`` of ``n_images`` normal scores.

    A new score from the same distribution exceeds the k-th smallest of n with probability
    (n + 1 − k) / (n + 1); :func:`threshold_from_normal` interpolates at position 1 + (n − 1)·q, so
    the share is (n − (n − 1)·q) / (n + 1): 1 − q for many images, 1 / (n + 1) (the maximum of
    n) when q = 1, and far above 1 − q when n·(1 − q) < 1.
    """
    return (n_images - (n_images - 1) * quantile) / (n_images + 1)


def threshold_f1_max(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold with the best F1 on a labelled validation set (score > threshold = anomalous).

    ``f1_max`` labels ``score >= t`` anomalous for the best ``t``; the threshold returned lies
    halfway between ``t`` and the next lower validation score, so the same images are labelled
    anomalous and small numerical differences in later scores do not flip them.
    """
    scores = np.asarray(scores, dtype=np.float64)
    best = f1_max(labels, scores)[1]
    lower = scores[scores < best]
    return float((best + lower.max()) / 2) if lower.size else float(best - 1e-6 * max(abs(best), 1))


@torch.no_grad()
def calibrate(
    model: nn.Module,
    criterion: ReconstructionLoss,
    images: torch.Tensor,
    *,
    quantile: float,
    map_kind: str,
    score_kind: str = "loss",
    map_sigma: float = 0.0,
    validation: tuple[torch.Tensor, np.ndarray] | None = None,
    batch_size: int = 64,
) -> Calibration:
    """Score held-out normal images (uint8, N x 3 x H x W) and derive the calibration."""
    if map_kind not in MAP_KINDS:
        raise ConfigError(f"--map {map_kind!r}: use one of {', '.join(MAP_KINDS)}")
    if score_kind not in SCORE_KINDS:
        raise ConfigError(f"--score {score_kind!r}: use one of {', '.join(SCORE_KINDS)}")
    raws, sums = [], dict.fromkeys(RESIDUALS, 0.0)
    for batch in images.split(batch_size):
        raw = score_images(model, criterion, batch.float() / 255)
        for k in RESIDUALS:
            sums[k] += raw.residuals[k].double().mean(dim=(1, 2)).sum().item()
        raws.append(raw)
    scales = {k: max(v / len(images), 1e-12) for k, v in sums.items()}
    maps = [raw.residuals for raw in raws]

    def scores_of(raw: RawScores) -> torch.Tensor:
        return image_score(raw, score_kind, map_kind=map_kind, scales=scales).cpu()

    normal = torch.cat([scores_of(raw) for raw in raws]).double().numpy()
    chosen = torch.cat([anomaly_map(r, map_kind, scales, map_sigma).flatten() for r in maps])
    threshold, method = threshold_from_normal(normal, quantile), f"quantile:{quantile}"
    if validation is not None:
        val_images, val_labels = validation
        val_scores = torch.cat(
            [
                scores_of(score_images(model, criterion, b.to(images.device).float() / 255))
                for b in val_images.split(batch_size)
            ]
        )
        threshold, method = threshold_f1_max(val_scores.numpy(), val_labels), "f1-max:validation"
    return Calibration(
        n_images=len(images),
        score_mean=float(normal.mean()),
        score_std=float(normal.std()),
        threshold=threshold,
        threshold_method=method,
        map_kind=map_kind,
        map_scales=scales,
        map_normal_p99=float(np.quantile(chosen.float().cpu().numpy(), 0.99)),
        score_kind=score_kind,
        map_sigma=map_sigma,
    )
