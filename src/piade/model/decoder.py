"""Upsampling layer (Table 5) and the skip-connected transposed-convolution decoder (Table 6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Upsampling(nn.Module):
    """Table 5: Linear 64→128, BN, ReLU, Linear 128→512, BN, ReLU, Linear 512→C·m².

    (Table 5 prints the last layer's input as 128; it follows a 512-wide layer, so it is 512.)
    The output is reshaped to a (B, C, m, m) map the size of the encoder's F.
    """

    def __init__(self, in_dim: int, hidden: Sequence[int], channels: int, side: int) -> None:
        super().__init__()
        self.channels, self.side = channels, side
        self.layers = nn.Sequential(
            nn.Linear(in_dim, hidden[0]),
            nn.BatchNorm1d(hidden[0]),
            nn.ReLU(inplace=True),
            nn.Linear(hidden[0], hidden[1]),
            nn.BatchNorm1d(hidden[1]),
            nn.ReLU(inplace=True),
            nn.Linear(hidden[1], channels * side * side),
        )

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        x = self.layers(vector)  # (B, C*m*m)
        return x.reshape(-1, self.channels, self.side, self.side)  # (B, C, m, m)


def bilinear_orthogonal_(conv: nn.ConvTranspose2d) -> None:
    """Start a transposed convolution as bilinear upsampling after an orthogonal channel mix.

    The weight (C_in, C_out, k, k) becomes ``M[i, o] * K[y, x]``: ``M`` (C_in, C_out) orthogonal,
    ``K`` the separable bilinear kernel of the stride (``[0.5, 1, 0.5]`` for k 3, stride 2), so the
    layer first outputs the linear interpolation of ``M^T x`` — a smooth image, where a fully
    orthogonal kernel gives every output phase (even/odd rows and columns) its own random filter:
    a checkerboard. Bias zero. See docs/training.md for why this is the default.
    """
    c_in, c_out, kh, kw = conv.weight.shape
    mix = torch.empty(c_in, c_out)
    nn.init.orthogonal_(mix)
    kernels = [
        (1 - (torch.arange(k) - (k - 1) / 2).abs() / s).clamp(min=0)
        for k, s in zip((kh, kw), conv.stride, strict=True)
    ]
    spatial = torch.outer(kernels[0], kernels[1])  # (k, k)
    with torch.no_grad():
        conv.weight.copy_(mix[:, :, None, None] * spatial)
        if conv.bias is not None:
            conv.bias.zero_()


def halving_chain(size: int, halvings: int) -> list[int]:
    """Spatial sizes of a backbone input after each stride-2 step: [H, ceil(H/2), ..., m].

    Every stride-2 convolution and max pool of a ResNet (kernel k, padding k // 2) maps x to
    ceil(x / 2).
    """
    sizes = [size]
    for _ in range(halvings):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class Decoder(nn.Module):
    """Transposed convolutions that exactly undo the encoder's halvings, BN + ReLU between, tanh last.

    Layer k maps side ``sizes[k+1]`` to ``sizes[k]`` with kernel 3, stride 2, padding 1 (as in
    Table 6) and ``output_padding`` 1 when the encoder's input side was even, 0 when it was odd, so
    the output is exactly ``image_size`` for every size (e.g. 4→8→15→30→60→120 at 120 px).
    """

    def __init__(self, in_channels: int, *, widths: Sequence[int], sizes: Sequence[int]) -> None:
        super().__init__()
        if len(widths) != len(sizes) - 2:
            raise ValueError(
                f"decoder_channels needs {len(sizes) - 2} widths for a backbone with "
                f"{len(sizes) - 1} stride-2 steps (got {len(widths)})"
            )
        chans = [in_channels, *widths, 3]
        targets = list(reversed(sizes[:-1]))  # e.g. [8, 15, 30, 60, 120]
        layers: list[nn.Module] = []
        for k, target in enumerate(targets):
            layers.append(
                nn.ConvTranspose2d(
                    chans[k],
                    chans[k + 1],
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=int(target % 2 == 0),
                )
            )
            last = k == len(targets) - 1
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(chans[k + 1]), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, 3, H, W) in [-1, 1]
