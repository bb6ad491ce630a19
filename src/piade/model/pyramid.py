"""Pyramidal pooling into primary capsules (paper Sec. 3.1, Fig. 5)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class PyramidalPooling(nn.Module):
    """Pool F at several spatial scales and cut every level into ``capsule_dim``-d primary capsules.

    Each level is an adaptive average pool of F to ``s x s``, a 1x1 convolution and batch norm. A
    capsule is ``capsule_dim`` consecutive channels at one pooled position; the capsules of all levels
    are stacked into ``u`` of shape (B, n, capsule_dim), n = sum over levels of (channels / d) * s^2.
    """

    def __init__(
        self, in_channels: int, *, scales: Sequence[int], channels: Sequence[int], capsule_dim: int
    ) -> None:
        super().__init__()
        if len(scales) != len(channels) or any(c % capsule_dim for c in channels):
            raise ValueError(f"need one channel count per scale, each a multiple of {capsule_dim}")
        self.capsule_dim = capsule_dim
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(s),
                nn.Conv2d(in_channels, c, kernel_size=1, bias=False),
                nn.BatchNorm2d(c),
            )
            for s, c in zip(scales, channels, strict=True)
        )
        self.num_capsules = sum(
            (c // capsule_dim) * s * s for s, c in zip(scales, channels, strict=True)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, d = features.shape[0], self.capsule_dim
        capsules = []
        for level in self.levels:
            y = level(features)  # (B, C_s, s, s)
            c, s = y.shape[1], y.shape[2]
            y = y.reshape(batch, c // d, d, s, s)  # (B, C_s/d, d, s, s)
            y = y.permute(0, 1, 3, 4, 2)  # (B, C_s/d, s, s, d)
            capsules.append(y.reshape(batch, -1, d))  # (B, C_s/d * s * s, d)
        return torch.cat(capsules, dim=1)  # (B, n, d): u
