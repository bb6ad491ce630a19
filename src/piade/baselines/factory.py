"""Build a baseline detector by name (the benchmark's ``--methods``)."""

from __future__ import annotations

from piade.baselines.ae_training import AutoencoderBaseline
from piade.baselines.base import Baseline
from piade.baselines.shallow import KdeBaseline, OcsvmBaseline
from piade.errors import ConfigError

BASELINES = ("ocsvm", "kde", "ae-l2", "ae-ssim")


def build_baseline(
    name: str,
    *,
    image_size: int,
    epochs: int = 100,
    batch_size: int = 128,
    seed: int = 0,
    device: str = "cpu",
) -> Baseline:
    """The baseline ``name`` (one of :data:`BASELINES`) for (N, 3, image_size, image_size) images.

    ``epochs``, ``batch_size`` and ``device`` only matter to the autoencoders; ``seed`` makes every
    baseline deterministic. Raises :class:`ConfigError` for an unknown name or an image size the
    method cannot take.
    """
    if name not in BASELINES:
        raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    if image_size < 1:
        raise ConfigError(
            f"baseline image_size must be a positive number of pixels, got {image_size}"
        )
    if name == "ocsvm":
        return OcsvmBaseline(image_size=image_size, seed=seed)
    if name == "kde":
        return KdeBaseline(image_size=image_size, seed=seed)
    return AutoencoderBaseline(
        loss=name.removeprefix("ae-"),
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        device=device,
    )
