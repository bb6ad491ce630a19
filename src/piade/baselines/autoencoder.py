"""The convolutional autoencoder of Bergmann et al. (VISAPP 2019), as a pure ``nn.Module``.

P. Bergmann, S. Löwe, M. Fauser, D. Sattlegger, C. Steger, "Improving unsupervised defect
segmentation by applying structural similarity to autoencoders", VISAPP 2019, Table 1. For 128×128
inputs the encoder is

======  ======  ======  =======  ========
layer   kernel  stride  padding  channels
======  ======  ======  =======  ========
conv1   4×4     2       1        32
conv2   4×4     2       1        32
conv3   3×3     1       1        32
conv4   4×4     2       1        64
conv5   3×3     1       1        64
conv6   4×4     2       1        128
conv7   3×3     1       1        64
conv8   3×3     1       1        32
conv9   8×8     1       0        d = 100 (the 1×1 latent)
======  ======  ======  =======  ========

and the decoder is its mirror image with transposed convolutions (conv9 ↔ an 8×8 transposed conv
from d to 32 channels, …, conv1 ↔ a 4×4 stride-2 transposed conv to 3 channels). Every layer is
followed by LeakyReLU(0.2) except the latent layer (linear) and the output layer, whose sigmoid keeps
the reconstruction in [0, 1], the range of the input images (the paper leaves the output linear).
Weights use PyTorch's default initialisation.

Other sizes: the four stride-2 layers divide the side by 16, so the latent kernel is
``image_size // 16``; sizes must be multiples of 16 from 32 (CIFAR-10's 32 px gives a 2×2 kernel).
This module knows nothing about losses, data or devices; :mod:`piade.baselines.ae_training` trains it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from piade.errors import ConfigError

LATENT_DIM = 100  # Bergmann et al.'s d for 128×128 textures and objects
MIN_IMAGE_SIZE = 32
SIZE_STEP = 16  # four stride-2 layers: the side must divide by 2**4

# (kernel, stride, padding, out_channels) of conv1–conv8; conv9 (the latent layer) is added apart.
ENCODER_LAYERS: tuple[tuple[int, int, int, int], ...] = (
    (4, 2, 1, 32),
    (4, 2, 1, 32),
    (3, 1, 1, 32),
    (4, 2, 1, 64),
    (3, 1, 1, 64),
    (4, 2, 1, 128),
    (3, 1, 1, 64),
    (3, 1, 1, 32),
)


def check_image_size(image_size: int) -> None:
    """Raise :class:`ConfigError` unless the autoencoder can take ``image_size`` pixels a side."""
    if image_size < MIN_IMAGE_SIZE or image_size % SIZE_STEP:
        raise ConfigError(
            f"the Bergmann autoencoder cannot take {image_size}×{image_size} images; use a multiple "
            f"of {SIZE_STEP} from {MIN_IMAGE_SIZE} (32, 48, 64, …, 128, …)"
        )


class AutoencoderOutput(NamedTuple):
    """reconstruction: (B, C, S, S) in [0, 1]; latent: (B, d, 1, 1)."""

    reconstruction: torch.Tensor
    latent: torch.Tensor


class BergmannAutoencoder(nn.Module):
    """Bergmann et al.'s convolutional autoencoder for (B, channels, S, S) images in [0, 1].

    Args:
        image_size: S, a multiple of 16 from 32 (the latent layer's kernel is S // 16).
        in_channels: 3 for RGB (Bergmann et al. used 1 for grey images).
        latent_dim: d, the size of the 1×1 bottleneck.
        negative_slope: of the LeakyReLU after every hidden layer (0.2 in the paper).
    """

    def __init__(
        self,
        image_size: int = 128,
        *,
        in_channels: int = 3,
        latent_dim: int = LATENT_DIM,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        check_image_size(image_size)
        self.image_size, self.latent_dim = image_size, latent_dim
        latent_kernel = image_size // SIZE_STEP

        def act() -> nn.Module:
            return nn.LeakyReLU(negative_slope)

        encoder: list[nn.Module] = []
        channels = [in_channels] + [out for *_, out in ENCODER_LAYERS]
        for (kernel, stride, padding, out), c_in in zip(ENCODER_LAYERS, channels[:-1], strict=True):
            encoder += [nn.Conv2d(c_in, out, kernel, stride, padding), act()]
        encoder.append(nn.Conv2d(channels[-1], latent_dim, latent_kernel, 1, 0))
        self.encoder = nn.Sequential(*encoder)

        decoder: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, channels[-1], latent_kernel, 1, 0),
            act(),
        ]
        for i in reversed(range(len(ENCODER_LAYERS))):
            kernel, stride, padding, out = ENCODER_LAYERS[i]
            decoder.append(nn.ConvTranspose2d(out, channels[i], kernel, stride, padding))
            decoder.append(act() if i > 0 else nn.Sigmoid())
        self.decoder = nn.Sequential(*decoder)

    def forward(self, images: torch.Tensor) -> AutoencoderOutput:
        """Reconstruct (B, C, S, S) images; returns the reconstruction and the (B, d, 1, 1) latent."""
        latent = self.encoder(images)  # (B, d, 1, 1)
        return AutoencoderOutput(self.decoder(latent), latent)
