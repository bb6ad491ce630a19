"""Training and scoring of the Bergmann et al. autoencoder: the AE-L2 and AE-SSIM baselines.

Training follows Bergmann et al. (VISAPP 2019): Adam with learning rate 2e-4 and weight decay 1e-5,
batches of 128 (or all the images when there are fewer), inputs in [0, 1]. AE-L2 minimises the mean
squared error; AE-SSIM minimises 1 − SSIM with an 11×11 Gaussian window, σ 1.5
(:func:`piade.losses.ssim`). One difference: Bergmann et al. trained on 10 000 augmented patches
cropped from the training images, while these baselines train, without augmentation, on the whole
training images resized to ``image_size`` (the protocol every method of the benchmark shares), for
``epochs`` passes in an order shuffled by a generator seeded from ``seed``.

Scoring: the per-pixel anomaly map is the squared error averaged over channels (AE-L2) or 1 − the
SSIM map averaged over channels (AE-SSIM), at the input size. The image score is the map's maximum:
Bergmann et al. (and MVTec AD's evaluation) call an image anomalous when any pixel exceeds the
segmentation threshold, so the maximum is the image-level equivalent of their pixel decision.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from piade.baselines.autoencoder import LATENT_DIM, BergmannAutoencoder, check_image_size
from piade.baselines.base import BaselineScores, check_images
from piade.errors import ConfigError
from piade.losses import ssim
from piade.runtime import resolve_device, seed_everything

log = logging.getLogger(__name__)

LOSSES = ("l2", "ssim")
LEARNING_RATE = 2e-4  # Bergmann et al.
WEIGHT_DECAY = 1e-5  # Bergmann et al.
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Bergmann et al.'s 11×11 window; σ 1.5 as in Wang et al. 2004
SCORE_BATCH = 64  # images per forward pass when scoring
LOG_LINES = 10  # about this many progress lines per fit


def residual_map(images: torch.Tensor, reconstruction: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-pixel anomaly map (B, H, W) of images and reconstructions (B, C, H, W) in [0, 1]."""
    if loss == "l2":
        return (images - reconstruction).pow(2).mean(dim=1)
    _, ssim_map = ssim(images, reconstruction, window_size=SSIM_WINDOW, sigma=SSIM_SIGMA)
    return 1 - ssim_map.mean(dim=1)  # (B, C, H, W) -> (B, H, W)


def training_loss(images: torch.Tensor, reconstruction: torch.Tensor, loss: str) -> torch.Tensor:
    """The batch's scalar loss: mean squared error, or 1 − mean SSIM."""
    if loss == "l2":
        return (images - reconstruction).pow(2).mean()
    similarity, _ = ssim(images, reconstruction, window_size=SSIM_WINDOW, sigma=SSIM_SIGMA)
    return 1 - similarity.mean()


class AutoencoderBaseline:
    """AE-L2 or AE-SSIM: Bergmann et al.'s autoencoder trained with the L2 or the SSIM loss."""

    def __init__(
        self,
        *,
        loss: str,
        image_size: int,
        epochs: int = 100,
        batch_size: int = 128,
        seed: int = 0,
        device: str = "cpu",
    ) -> None:
        if loss not in LOSSES:
            raise ConfigError(f"autoencoder loss {loss!r}: use one of {', '.join(LOSSES)}")
        check_image_size(image_size)
        if epochs < 1 or batch_size < 1:
            raise ConfigError(
                f"autoencoder epochs and batch_size must be ≥ 1, got {epochs} and {batch_size}"
            )
        self.name = f"ae-{loss}"
        self.loss, self.image_size = loss, image_size
        self.epochs, self.batch_size, self.seed = epochs, batch_size, seed
        self.device = resolve_device(device)
        self.model: BergmannAutoencoder | None = None

    def _as_input(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, S, S) → float32 (B, 3, S, S) in [0, 1] on the baseline's device."""
        return images.to(self.device).to(torch.float32) / 255.0

    def fit(self, images: torch.Tensor) -> dict[str, Any]:
        """Train a fresh autoencoder on normal uint8 (N, 3, S, S) images.

        Seeds the global RNGs with ``seed`` (:func:`piade.runtime.seed_everything`) for the initial
        weights; the batch order has its own generator. Runs are bit-identical on the CPU; on CUDA,
        cuDNN may pick non-deterministic kernels unless the caller asks for deterministic ones.
        """
        check_images(images, self.image_size)
        seed_everything(self.seed)  # the initial weights
        self.model = BergmannAutoencoder(self.image_size).to(self.device)
        batch_size = min(self.batch_size, images.shape[0])
        final_loss = self._train(self.model, images, batch_size)
        self.model.eval()
        return self._describe(images.shape[0], batch_size, final_loss)

    def _train(self, model: BergmannAutoencoder, images: torch.Tensor, batch_size: int) -> float:
        """Run the epochs; returns the last epoch's mean training loss."""
        optimizer = torch.optim.Adam(
            model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY
        )
        n = images.shape[0]
        order_rng = torch.Generator().manual_seed(self.seed)
        every = max(1, self.epochs // LOG_LINES)
        model.train()
        epoch_loss = float("nan")
        for epoch in range(1, self.epochs + 1):
            order = torch.randperm(n, generator=order_rng)
            total = 0.0
            for start in range(0, n, batch_size):
                batch = self._as_input(images[order[start : start + batch_size]])
                loss = training_loss(batch, model(batch).reconstruction, self.loss)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * batch.shape[0]
            epoch_loss = total / n
            if epoch % every == 0 or epoch == self.epochs:
                log.info("%s epoch %d/%d: loss %.5f", self.name, epoch, self.epochs, epoch_loss)
        return epoch_loss

    def _describe(self, n_train: int, batch_size: int, final_loss: float) -> dict[str, Any]:
        """The fit() report: what was trained and how."""
        info: dict[str, Any] = {
            "method": self.name,
            "architecture": "Bergmann et al. 2019, Table 1",
            "n_train": int(n_train),
            "image_size": self.image_size,
            "latent_dim": LATENT_DIM,
            "loss": "1 - ssim" if self.loss == "ssim" else "mse",
            "epochs": self.epochs,
            "batch_size": batch_size,
            "optimizer": "adam",
            "lr": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
            "init": "pytorch default",
            "output_activation": "sigmoid",
            "image_score": "max of the per-pixel map",
            "final_loss": final_loss,
            "seed": self.seed,
            "device": str(self.device),
        }
        if self.loss == "ssim":
            info |= {"ssim_window": SSIM_WINDOW, "ssim_sigma": SSIM_SIGMA}
        return info

    def score(self, images: torch.Tensor) -> BaselineScores:
        """Image scores (N,) = max of the per-pixel maps (N, S, S)."""
        check_images(images, self.image_size)
        if self.model is None:
            raise RuntimeError("call fit() before score()")
        self.model.eval()
        maps = []
        with torch.inference_mode():
            for start in range(0, images.shape[0], SCORE_BATCH):
                batch = self._as_input(images[start : start + SCORE_BATCH])
                reconstruction = self.model(batch).reconstruction
                maps.append(residual_map(batch, reconstruction, self.loss).float().cpu())
        stacked = torch.cat(maps).numpy()  # (N, S, S)
        scores = stacked.reshape(stacked.shape[0], -1).max(axis=1).astype(np.float64)  # (N,)
        return BaselineScores(scores, stacked.astype(np.float32, copy=False))
