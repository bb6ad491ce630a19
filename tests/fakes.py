"""Tiny synthetic data for engine and CLI tests: smooth normal images, bright-square anomalies.

Engine and CLI tests train with ``TINY_BACKBONE`` (timm's 82k-parameter test network) to stay fast;
the paper's ResNet-18 network itself is tested in ``tests/model``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from piade.train.config import TrainConfig

TINY_BACKBONE = "timm:test_efficientnet"
# CLI flags for a fast fit on CPU: tiny images and network, random weights (nothing to download)
FAST_FIT = [
    "--image-size", "32", "--batch-size", "8", "--encoder-weights", "none",
    "--perceptual-weights", "none", "--device", "cpu", "--backbone", TINY_BACKBONE,
]  # fmt: skip


def offline_train_config(**overrides: Any) -> TrainConfig:
    """A TrainConfig for tests: CPU, random encoder and perceptual weights (nothing to download)."""
    settings: dict[str, Any] = {
        "batch_size": 8,
        "encoder_weights": None,
        "perceptual_weights": None,
        "device": "cpu",
    }
    return TrainConfig(**(settings | overrides))


def normal_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour gradient with a little noise (H, W, 3) uint8."""
    base = rng.uniform(60, 160, 3)
    ramp = np.linspace(-30, 30, size)
    image = base + ramp[None, :, None] * rng.uniform(0.5, 1.0) + rng.normal(0, 3, (size, size, 3))
    return image.clip(0, 255).astype(np.uint8)


def add_defect(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste a bright square; returns (image, mask)."""
    size = image.shape[0]
    side = size // 3
    top, left = rng.integers(0, size - side, 2)
    mask = np.zeros((size, size), dtype=bool)
    mask[top : top + side, left : left + side] = True
    out = image.copy()
    out[mask] = (250, 250, 40)
    return out, mask


def write_mvtec(
    root: Path,
    category: str = "widget",
    *,
    size: int = 48,
    n_train: int = 24,
    n_good: int = 6,
    n_bad: int = 6,
    seed: int = 0,
) -> Path:
    """An MVTec-AD-layout tree with one defect type ('square') and its masks; returns root."""
    rng = np.random.default_rng(seed)
    base = root / category
    for sub in ("train/good", "test/good", "test/square", "ground_truth/square"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n_train):
        Image.fromarray(normal_image(rng, size)).save(base / "train/good" / f"{i:03d}.png")
    for i in range(n_good):
        Image.fromarray(normal_image(rng, size)).save(base / "test/good" / f"{i:03d}.png")
    for i in range(n_bad):
        image, mask = add_defect(normal_image(rng, size), rng)
        Image.fromarray(image).save(base / "test/square" / f"{i:03d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(
            base / "ground_truth/square" / f"{i:03d}_mask.png"
        )
    return root


class TensorImages(torch.utils.data.Dataset[dict[str, Any]]):
    """An in-memory data set with the item layout of piade's data sets."""

    def __init__(self, images: np.ndarray, labels: list[int] | None = None) -> None:
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
        self.labels = labels if labels is not None else [0] * len(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "image": self.images[index].float() / 255,
            "label": self.labels[index],
            "mask": torch.zeros(1, *self.images.shape[-2:]),
            "path": f"mem:{index}",
        }


def normal_set(n: int, size: int = 32, seed: int = 0) -> TensorImages:
    rng = np.random.default_rng(seed)
    return TensorImages(np.stack([normal_image(rng, size) for _ in range(n)]))


def disc_set(n: int, size: int = 32, seed: int = 0) -> TensorImages:
    """Structured normal images: a bright disc of random centre and radius on a dark background.

    Their mean image is a blurred disc (MSE 0.10 in the [-1, 1] range at 32 px): an output that
    beats it must follow each image's disc.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    colour = np.array([1.0, 0.8, 0.6])
    images = []
    for _ in range(n):
        cy, cx = rng.uniform(0.35 * size, 0.65 * size, 2)
        radius = rng.uniform(0.2 * size, 0.3 * size)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        images.append(np.where(inside, 0.85, 0.15)[..., None] * colour * 255)
    return TensorImages(np.stack(images).round().astype(np.uint8))
