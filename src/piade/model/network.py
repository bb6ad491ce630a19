"""The full network: SE encoder → pyramidal pooling → dynamic routing → upsampling → decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from piade.config import ModelConfig
from piade.model.decoder import Decoder, Upsampling, halving_chain
from piade.model.encoder import SEEncoder, TimmSEEncoder
from piade.model.pyramid import PyramidalPooling
from piade.model.routing import CapsuleRouting
from piade.preprocess import imagenet_stats

TIE_MARGIN = 1e-5  # vector 0 is decoded unless another vector is longer by more than this


def longest_vector(lengths: torch.Tensor, *, margin: float = TIE_MARGIN) -> torch.Tensor:
    """The index (B,) of the longest vector per image, vector 0 winning ties (Sec. 3.1).

    Another vector is chosen only when it is longer than vector 0 by more than ``margin``, so a tie,
    or a difference of a float rounding (1e-7), falls the same way in PyTorch and ONNX Runtime.
    """
    favoured = torch.cat([lengths[:, :1] + margin, lengths[:, 1:]], dim=1)  # (B, J)
    return favoured.argmax(dim=1)


class ModelOutput(NamedTuple):
    """What one forward pass returns.

    Attributes:
        reconstruction: (B, 3, H, W) in [-1, 1], the decoder's tanh output.
        vectors: (B, num_vectors, vector_dim), the instantiation vectors after routing.
        lengths: (B, num_vectors), their norms, each in [0, 1).
        decoded: (B,) int64, the index of the vector that was decoded.
        couplings: (B, n, num_vectors), the final routing coefficients c (rows sum to 1).
    """

    reconstruction: torch.Tensor
    vectors: torch.Tensor
    lengths: torch.Tensor
    decoded: torch.Tensor
    couplings: torch.Tensor


def squash_constant(config: ModelConfig, num_capsules: int) -> float:
    """The squash constant ``a`` of Eq. 3: ``config.squash_a``, or by default the expected
    ``|s_j|^2 = n * d / J^2`` of n independent d-dimensional predictions of unit-variance entries,
    each weighted by the initial coupling 1 / J (batch norm gives the primary capsules unit
    variance; the orthogonal ``W_ij`` keep their norm)."""
    if config.squash_a is not None:
        return config.squash_a
    return num_capsules * config.capsule_dim / config.num_vectors**2


class PyramidalCapsuleAutoencoder(nn.Module):
    """The paper's network (Fig. 2). Input: RGB images in [0, 1], (B, 3, H, W), H = W = image_size.

    The encoder sees the images ImageNet-normalised; the decoder reconstructs them in [-1, 1]. In
    training mode vector 0 is always decoded; in eval mode the longest vector is (Sec. 3.1;
    :func:`longest_vector`).
    """

    def __init__(self, config: ModelConfig, encoder: SEEncoder | TimmSEEncoder) -> None:
        super().__init__()
        self.config = config
        sizes = halving_chain(config.image_size, encoder.num_halvings)
        side, channels = sizes[-1], encoder.out_channels
        self.feature_side = side
        d = config.capsule_dim
        pyramid_channels = config.pyramid_channels or tuple(  # C / s, a multiple of d
            max(d, channels // s // d * d) for s in config.pyramid_scales
        )
        self.encoder = encoder
        self.pyramid = PyramidalPooling(
            channels,
            scales=config.pyramid_scales,
            channels=pyramid_channels,
            capsule_dim=config.capsule_dim,
        )
        self.routing = CapsuleRouting(
            self.pyramid.num_capsules,
            config.capsule_dim,
            config.num_vectors,
            config.vector_dim,
            iterations=config.routing_iterations,
            a=squash_constant(config, self.pyramid.num_capsules),
            eps=config.squash_eps,
        )
        self.upsampling = Upsampling(config.vector_dim, config.upsample_hidden, channels, side)
        self.decoder = Decoder(2 * channels, widths=config.decoder_channels, sizes=sizes)
        mean, std = imagenet_stats()
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, images: torch.Tensor, *, vector_index: int | None = None) -> ModelOutput:
        """Reconstruct ``images``; ``vector_index`` forces which vector is decoded."""
        features = self.encoder((images - self.mean) / self.std)  # (B, C, m, m): F
        u = self.pyramid(features)  # (B, n, d)
        vectors, couplings = self.routing(u)  # (B, J, D), (B, n, J)
        lengths = torch.linalg.vector_norm(vectors, dim=2)  # (B, J)
        batch = images.shape[0]
        if vector_index is not None:
            decoded = torch.full((batch,), vector_index, dtype=torch.long, device=images.device)
        elif self.training:
            decoded = torch.zeros(batch, dtype=torch.long, device=images.device)
        else:
            decoded = longest_vector(lengths)  # (B,)
        index = decoded[:, None, None].expand(-1, 1, vectors.shape[2])  # (B, 1, D)
        chosen = vectors.gather(1, index)[:, 0]  # (B, D)
        upsampled = self.upsampling(chosen)  # (B, C, m, m)
        merged = torch.cat([upsampled, features], dim=1)  # (B, 2C, m, m): skip connection
        reconstruction = self.decoder(merged)  # (B, 3, H, W)
        return ModelOutput(reconstruction, vectors, lengths, decoded, couplings)
