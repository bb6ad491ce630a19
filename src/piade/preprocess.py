"""Image conventions shared by the network, the losses and the data: inputs in [0, 1], RGB."""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_stats(device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet mean and std as (1, 3, 1, 1) tensors."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).reshape(1, 3, 1, 1)
    return mean, std


def to_signed(images: torch.Tensor) -> torch.Tensor:
    """Map images from [0, 1] to the decoder's [-1, 1] range (the reconstruction target)."""
    return images * 2 - 1
