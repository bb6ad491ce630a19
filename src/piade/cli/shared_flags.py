"""The flags ``piade fit`` and ``piade benchmark`` share, defined once: how piade's network is
built and trained. :func:`add_flags` adds some of them, by name, to either verb's parser."""

from __future__ import annotations

import argparse
from typing import Any

from piade.config import LOSS_CONVENTIONS, MAP_KINDS, PERCEPTUAL_NETWORKS, ModelConfig
from piade.train.config import LR_SCHEDULES, TrainConfig

T = TrainConfig()
M = ModelConfig()

SHARED_FLAGS: dict[str, dict[str, Any]] = {
    "--image-size": {
        "type": int,
        "help": "input side in px (default: 32 for cifar10, 120 otherwise, as in the paper)",
    },
    "--center-crop": {
        "type": float,
        "default": M.center_crop,
        "help": "keep the central share of each side before resizing (default 1: the whole image,"
        " as the paper describes; the authors' code crops MVTec AD to 120 of 156 px: 0.769)",
    },
    "--device": {"default": T.device, "help": "auto, cpu, cuda[:N] or mps"},
    "--backbone": {"default": M.backbone, "help": "resnet18|34|50 or timm:<name>"},
    "--lr-schedule": {
        "choices": LR_SCHEDULES,
        "default": T.lr_schedule,
        "help": "constant (the paper's) or cosine (annealed to 0 over the epochs); "
        "docs/training.md",
    },
    "--encoder-weights": {
        "default": T.encoder_weights,
        "help": "backbone weights: none, imagenet (hub cache or download) or a file",
    },
    "--perceptual-net": {
        "choices": PERCEPTUAL_NETWORKS,
        "default": T.perceptual_net,
        "help": "the perceptual loss's network (the paper's: vgg11)",
    },
    "--perceptual-depth": {
        "type": int,
        "default": T.perceptual_depth,
        "help": "modules of the VGG's features kept (4: the paper's; vgg16 6 ends at conv2_1 like "
        "vgg11 4)",
    },
    "--perceptual-weights": {
        "default": T.perceptual_weights,
        "help": "perceptual network weights: none, imagenet or a file",
    },
    "--loss-convention": {
        "choices": LOSS_CONVENTIONS,
        "default": T.loss_convention,
        "help": "the loss terms' units: authors (as the authors' code: [0, 1] MSE and perceptual"
        " input; measured better) or design ([-1, 1] MSE, ImageNet-normalised perceptual input;"
        " DESIGN.md); docs/training.md",
    },
    "--map": {
        "dest": "map_kind",
        "default": T.map_kind,
        "choices": MAP_KINDS,
        "help": "anomaly map",
    },
}


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, *names: str, prefix: str = ""
) -> None:
    """Add the shared flags ``names`` to ``parser`` (or an argument group), in that order;
    ``prefix`` starts each help text (e.g. ``"piade: "`` where other methods ignore the flag)."""
    for name in names:
        spec = dict(SHARED_FLAGS[name])
        spec["help"] = prefix + spec["help"]  # every shared flag has its help text
        parser.add_argument(name, **spec)
