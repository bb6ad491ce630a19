"""Squeeze-and-Excitation block (Hu et al. 2018; the paper's Eqs. 1–2)."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    """Channel attention: ``x * sigmoid(W2 relu(W1 mean_hw(x)))``.

    Eq. 1 (squeeze) is the spatial mean ``z_c``; Eq. 2 (excitation) is ``s = sigmoid(W2 relu(W1 z))``
    with ``W1`` reducing the channels by ``reduction`` (r = 2 in the paper) and ``W2`` restoring them.
    """

    def __init__(self, channels: int, *, reduction: int = 2) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.reduce = nn.Linear(channels, hidden)  # W1
        self.expand = nn.Linear(hidden, channels)  # W2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.mean(dim=(2, 3))  # (B, C): Eq. 1
        s = torch.sigmoid(self.expand(torch.relu(self.reduce(z))))  # (B, C): Eq. 2
        return x * s[:, :, None, None]  # (B, C, H, W)
