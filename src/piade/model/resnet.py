"""ResNet-18/34/50 (He et al., 2016), the encoder's backbone, with torchvision's parameter names.

piade builds the ResNet itself rather than through ``torchvision.models``: importing torchvision
costs 1.7–3 s on every command (its ``ops`` import ``torch._dynamo``), more than the rest of
``piade predict``'s start-up (docs/performance.md). The modules are declared and initialised in
torchvision's order, so a seeded random model draws the same weights as ``torchvision.models
.resnet18()``, and torchvision's ImageNet files load unchanged; ``tests/model/test_resnet.py``
checks both against torchvision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYOUTS = {  # name: (block, blocks per stage)
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` that computes a one-pixel output map as a matrix product.

    On small images the last stage's maps are one or two pixels wide (1 x 1 at 32 px, CIFAR-10's
    size). A convolution whose output is one pixel reads one window of its input, and only the
    kernel taps that meet the input (not its zero padding) contribute, so it equals ``F.linear``
    of that window with those taps: the same sums, rounded in another order. The weight gradient
    of oneDNN's convolution at one output pixel ran many times slower than the matrix product on
    a 2-core CPU (forward and backward at batch 120: a 512-channel 3 x 3 convolution at 1 x 1,
    128 ms against 8 ms; the strided one from 2 x 2, 51 ms against 12 ms), and a training step at
    32 px ran 1.47 times faster with it (docs/performance.md). Every other shape, and any module
    other than a plain zero-padded convolution, goes to ``nn.Conv2d`` unchanged.
    """

    def matmul_window(self, height: int, width: int) -> tuple[slice, slice] | None:
        """The (rows, columns) of the input that a one-pixel output reads, or None when this
        input size gives more than one output pixel (or the module is not a plain convolution)."""
        if self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str):
            return None
        window = []
        for size, k, s, p, d in zip(
            (height, width), self.kernel_size, self.stride, self.padding, self.dilation,
            strict=True,
        ):  # fmt: skip
            if d != 1 or (size + 2 * p - k) // s + 1 != 1:
                return None
            window.append(slice(p, min(k, p + size)))  # taps j read input row j - p
        return window[0], window[1]

    def _conv_forward(
        self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        taps = self.matmul_window(input.shape[-2], input.shape[-1])
        if taps is None:
            return super()._conv_forward(input, weight, bias)
        rows, columns = taps
        p_h, p_w = self.padding  # type: ignore[str-unpack]  # a tuple: matmul_window checked
        window = input[..., : rows.stop - p_h, : columns.stop - p_w]  # (B, C, h, w) read
        kernel = weight[:, :, rows, columns]  # (C_out, C, h, w): the taps that meet it
        # flatten, not reshape(len(input), -1): an exported ONNX graph keeps a free batch size
        out = F.linear(window.flatten(1), kernel.flatten(1), bias)
        return out[:, :, None, None]  # (B, C_out, 1, 1)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions and a shortcut (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self, in_channels: int, channels: int, stride: int, downsample: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1, 3×3 (strided), 1×1 convolutions and a shortcut (ResNet-50); stride on the 3×3."""

    expansion = 4

    def __init__(
        self, in_channels: int, channels: int, stride: int, downsample: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = _conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """The ImageNet ResNet: a stem (7×7 conv, max-pool), four stages, pooling and a classifier.

    The encoder uses the stem and the four stages; ``avgpool`` and ``fc`` are kept so that the
    names, the random draws and the ImageNet files are torchvision's.
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        if name not in LAYOUTS:
            raise ValueError(f"ResNet must be one of {tuple(LAYOUTS)}, got {name!r}")
        kind, blocks = LAYOUTS[name]
        block = BasicBlock if kind == "basic" else Bottleneck
        self.in_channels = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._stage(block, 64, blocks[0], stride=1)
        self.layer2 = self._stage(block, 128, blocks[1], stride=2)
        self.layer3 = self._stage(block, 256, blocks[2], stride=2)
        self.layer4 = self._stage(block, 512, blocks[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, 1000)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _stage(
        self, block: type[BasicBlock | Bottleneck], channels: int, count: int, stride: int
    ) -> nn.Sequential:
        out_channels = channels * block.expansion
        downsample = None
        if stride != 1 or self.in_channels != out_channels:
            downsample = nn.Sequential(
                _conv1x1(self.in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
            )
        layers = [block(self.in_channels, channels, stride, downsample)]
        self.in_channels = out_channels
        layers += [block(out_channels, channels, 1, None) for _ in range(1, count)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512·e, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, 1000)
