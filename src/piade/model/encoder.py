"""SE-ResNet18 encoder: a backbone whose every stage output goes through a Squeeze-and-Excitation block.

The paper (Sec. 3.1, Fig. 1) puts an SE block (r = 2) on the output of each of the five ResNet-18
stages — the stem (conv1, bn1, relu, maxpool) and layer1..layer4 — so the recalibrated features feed
the next stage. The backbone keeps its (optionally ImageNet) weights and is fine-tuned; the SE blocks are
new. Any timm model with ``features_only`` can replace the ResNet, with an SE block after each of its
feature levels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from piade.model.resnet import ResNet
from piade.model.squeeze_excitation import SqueezeExcitation
from piade.weights import load_into


class SEEncoder(nn.Module):
    """A chain of backbone stages, each followed by an SE block.

    Attributes:
        out_channels: channels of the output feature map F.
        num_halvings: how many stride-2 steps the backbone takes (5 for ResNets: input / 32).
    """

    def __init__(
        self, stages: list[nn.Module], channels: list[int], *, se_reduction: int, num_halvings: int
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(stage, SqueezeExcitation(c, reduction=se_reduction))
            for stage, c in zip(stages, channels, strict=True)
        )
        self.out_channels = channels[-1]
        self.num_halvings = num_halvings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x  # (B, C, m, m): F


class TimmSEEncoder(nn.Module):
    """A timm ``features_only`` model with an SE block spliced in after each feature level."""

    def __init__(self, features: nn.Module, *, se_reduction: int) -> None:
        super().__init__()
        info: Any = features.feature_info
        for name, channels in zip(info.module_name(), info.channels(), strict=True):
            owner = name if _has_submodule(features, name) else name.replace(".", "_")
            module = features.get_submodule(owner)
            features.set_submodule(
                owner, nn.Sequential(module, SqueezeExcitation(channels, reduction=se_reduction))
            )
        self.features = features
        self.out_channels = int(info.channels()[-1])
        self.num_halvings = round(math.log2(info.reduction()[-1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[-1]  # (B, C, m, m): the deepest feature level


def build_encoder(
    backbone: str,
    *,
    se_reduction: int,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    source: str = "",
) -> SEEncoder | TimmSEEncoder:
    """Build the SE encoder for ``backbone`` ("resnet18", ..., or "timm:<name>").

    ``state_dict`` holds pretrained backbone weights in the backbone's own key format (torchvision's
    or timm's); ``None`` keeps the backbone randomly initialised. ``source`` names where the weights
    came from, for error messages.
    """
    if backbone.startswith("timm:"):
        return _build_timm(backbone.removeprefix("timm:"), se_reduction, state_dict, source)
    resnet = ResNet(backbone)
    if state_dict is not None:
        load_into(resnet, state_dict, source=source, ignore_prefixes=("fc.",))
    stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
    stages: list[nn.Module] = [stem, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4]
    channels = [resnet.conv1.out_channels] + [_last_channels(layer) for layer in stages[1:]]
    return SEEncoder(stages, channels, se_reduction=se_reduction, num_halvings=5)


def _build_timm(
    name: str, se_reduction: int, state_dict: Mapping[str, torch.Tensor] | None, source: str
) -> TimmSEEncoder:
    from piade.weights import import_timm

    timm = import_timm()
    features = timm.create_model(name, pretrained=False, features_only=True)
    if state_dict is not None:
        load_into(features, state_dict, source=source, ignore_unexpected=True)
    return TimmSEEncoder(features, se_reduction=se_reduction)


def _last_channels(layer: nn.Module) -> int:
    """Output channels of a ResNet layer (its last block's last batch norm)."""
    norms = [m for m in layer.modules() if isinstance(m, nn.BatchNorm2d)]
    return norms[-1].num_features


def _has_submodule(module: nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
    except AttributeError:
        return False
    return True
