"""Model size and cost: parameter counts and FLOPs measured with ``torch.utils.flop_counter``."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def forward_flops(model: nn.Module, image_size: int, *, batch_size: int = 2) -> float:
    """FLOPs of one eval-mode forward pass per image, counted by ``FlopCounterMode``.

    The counter sums the FLOPs of matrix multiplications and convolutions (2 per multiply-add);
    element-wise operations (activations, normalisation, routing softmax) are not counted.
    """
    parameter = next(model.parameters())
    images = torch.rand(
        batch_size, 3, image_size, image_size, device=parameter.device, dtype=parameter.dtype
    )
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images)
    model.train(was_training)
    return counter.get_total_flops() / batch_size
