"""What every baseline detector offers: the protocol, its result type and the input check.

A baseline is fitted on normal training images only and scores test images; nothing in this package
ever sees a test label. Images enter as uint8 tensors (N, 3, S, S), as :mod:`piade.data` decodes
them, and every baseline maps them to float [0, 1] itself.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from piade.errors import DataError


class BaselineScores(NamedTuple):
    """A baseline's verdict on N images.

    Attributes:
        scores: (N,) float64 image scores, higher = more anomalous.
        maps: (N, H, W) float32 per-pixel anomaly maps at the input size, or None for methods
            without a spatial output (OC-SVM, KDE).
    """

    scores: np.ndarray
    maps: np.ndarray | None


@runtime_checkable
class Baseline(Protocol):
    """A detector fitted on normal images that scores new ones."""

    name: str

    def fit(self, images: torch.Tensor) -> dict[str, Any]:
        """Fit on uint8 (N, 3, S, S) normal images.

        Returns a JSON-serialisable description of what was fitted (the hyper-parameters actually
        used, e.g. ``n_components``, ``nu``, ``bandwidth``, ``epochs``, ``final_loss``).
        """
        ...

    def score(self, images: torch.Tensor) -> BaselineScores:
        """Score uint8 (N, 3, S, S) images of the size the baseline was fitted on."""
        ...


def check_images(images: torch.Tensor, image_size: int, *, min_count: int = 1) -> None:
    """Raise :class:`DataError` unless ``images`` is a uint8 (N, 3, S, S) batch with N ≥ min_count."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        kind = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"baselines take uint8 image tensors (N, 3, S, S); got {kind}")
    expected = (3, image_size, image_size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise DataError(
            f"baseline built for (N, 3, {image_size}, {image_size}) images got shape "
            f"{tuple(images.shape)}; resize the images or build the baseline with another image_size"
        )
    if images.shape[0] < min_count:
        raise DataError(f"baseline needs at least {min_count} images, got {images.shape[0]}")
