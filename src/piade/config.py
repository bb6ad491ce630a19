"""The model's configuration: every architectural choice in one frozen dataclass.

Defaults are the paper's (Mishra, Piciarelli & Foresti 2020, Sec. 3.1 and Tables 5–6), with the
ambiguities resolved as in the project's design brief. The resolved config is saved with every run and
inside every model file, so a model can always be rebuilt from it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from piade.errors import ConfigError

# The convolution widths of VGG's feature stages ("M": a 2×2 max-pool), Simonyan & Zisserman's
# configurations A (VGG-11) and D (VGG-16), as torchvision numbers them.
# fmt: off
VGG_LAYOUTS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
}
# fmt: on
PERCEPTUAL_NETWORKS = tuple(VGG_LAYOUTS)
# the units of the loss's terms (docs/training.md, "The authors' units"): "design" compares images
# in [-1, 1] and feeds the perceptual network ImageNet-normalised images (DESIGN.md); "authors"
# does as the authors' released code: MSE of images in [0, 1], perceptual network fed [0, 1]
LOSS_CONVENTIONS = ("design", "authors")
# the authors' units are the default: measured better or equal on bottle, COIL-20 and CIFAR-10
# (docs/training.md, "The authors' units"); files and runs saved before the option are "design"
DEFAULT_LOSS_CONVENTION = "authors"


def check_perceptual_depth(name: str, depth: int) -> None:
    """ConfigError unless ``name``'s ``features`` has at least ``depth`` modules (a conv entry of
    :data:`VGG_LAYOUTS` is a Conv2d and a ReLU, ``"M"`` one max-pool)."""
    if name not in VGG_LAYOUTS:
        raise ConfigError(f"perceptual network must be one of {PERCEPTUAL_NETWORKS}, got {name!r}")
    modules = sum(1 if entry == "M" else 2 for entry in VGG_LAYOUTS[name])
    if not 1 <= depth <= modules:
        raise ConfigError(
            f"perceptual_depth: {name}'s features have {modules} modules, so choose 1 to {modules}"
            f" (got {depth}; the paper keeps vgg11's first 4, ending at conv2_1)"
        )


TORCHVISION_BACKBONES = ("resnet18", "resnet34", "resnet50")
TIMM_PREFIX = "timm:"
MIN_IMAGE_SIZE = 32
# The largest side accepted: memory grows with its square (the paper's largest is 120 px), and a
# mistyped size must be refused before anything is allocated rather than fail deep inside torch.
MAX_IMAGE_SIZE = 1024
MIN_CENTER_CROP = 0.1
DECODER_INITS = ("bilinear", "orthogonal")
# The vocabularies of the scoring settings (piade.inference.scoring says what each means); kept here,
# free of torch, so the command line can offer them without importing it (`piade --help` stays quick)
MAP_KINDS = ("combined", "ssim", "perceptual", "mse")  # anomaly maps
SCORE_KINDS = (  # image scores
    "loss",
    "loss-balanced",
    "map-max",
    "map-top1",
    "perceptual-top1",
    "loss-x-map",
)
MAP_STYLES = ("overlay", "heatmap", "none")  # what `piade predict` writes into maps/
MAP_FORMATS = ("png", "jpg")  # the files it writes them as
# What configs written before a setting existed meant by it (their runs and model files used it)
LEGACY_VALUES: dict[str, Any] = {"decoder_init": "orthogonal", "center_crop": 1.0}


def with_legacy_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` (a saved model config) with the settings it predates filled in as they were."""
    return {**LEGACY_VALUES, **values}


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture of the pyramidal capsule autoencoder.

    Attributes:
        image_size: side of the square input and reconstruction; the paper uses 32 for CIFAR-10 and
            120 for COIL-100 and MVTec AD.
        center_crop: the central share of each side of an image kept before it is resized to
            ``image_size`` (1, the default, keeps the whole image, as the paper describes). The
            authors' released code resizes MVTec AD images to 156 px and crops the central 120
            (120 / 156 ≈ 0.769; docs/data.md). Part of the model: every image it scores is cut so.
        backbone: "resnet18" (paper), "resnet34", "resnet50", or "timm:<name>" for any timm model
            that supports ``features_only`` (needs the ``timm`` extra).
        num_vectors: instantiation vectors routed to; 2 in the paper, 1 is the no-routing ablation.
        vector_dim: length of each instantiation vector (64 in the paper).
        capsule_dim: length of each primary capsule cut from the pyramid (8 in the paper).
        routing_iterations: iterations of dynamic routing (Algorithm 1; 3 as in Sabour et al.).
        squash_a: the constant ``a`` of the squash function, Eq. 3 (1 in Sabour et al.). None
            (default) takes ``n * capsule_dim / num_vectors**2`` for n primary capsules: the
            expected ``|s_j|^2`` of n independent predictions at initialisation, so a length of 0.5
            means "as coherent as chance" and lengths near 1 need agreement. With a = 1 the sum of
            hundreds of predictions saturates every length at 1.0000 (docs/training.md).
        squash_eps: added under the square root of the squash so a zero vector has a finite gradient.
        se_reduction: the Squeeze-and-Excitation reduction ratio r (2 in the paper, Eq. 2).
        pyramid_scales: output sides of the adaptive average pools (1, 2, 4, 8 in the paper).
        pyramid_channels: channels of each pyramid level's 1x1 convolution; empty means
            ``encoder_channels // scale`` per level (the PSPNet convention of the authors' code).
        upsample_hidden: widths of the two hidden linear layers of the upsampling layer (Table 5).
        decoder_channels: widths of the hidden transposed convolutions (Table 6 is 16, 32, 32); one
            entry fewer than the backbone has stride-2 stages (5 for ResNets), the last layer gives 3.
        decoder_init: "bilinear" (default) starts each transposed convolution as bilinear
            upsampling after an orthogonal channel mix; "orthogonal" is the paper's literal
            orthogonal kernel, whose checkerboard output traps training under the perceptual loss
            on a flat grey image (docs/training.md).
    """

    image_size: int = 120
    center_crop: float = 1.0
    backbone: str = "resnet18"
    num_vectors: int = 2
    vector_dim: int = 64
    capsule_dim: int = 8
    routing_iterations: int = 3
    squash_a: float | None = None
    squash_eps: float = 1e-7
    se_reduction: int = 2
    pyramid_scales: tuple[int, ...] = (1, 2, 4, 8)
    pyramid_channels: tuple[int, ...] = ()
    upsample_hidden: tuple[int, int] = (128, 512)
    decoder_channels: tuple[int, ...] = (16, 32, 32, 32)
    decoder_init: str = "bilinear"

    def __post_init__(self) -> None:
        check_field_types(self)
        _check(
            MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE,
            f"image_size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} px",
            self.image_size,
        )
        _check(
            MIN_CENTER_CROP <= self.center_crop <= 1,
            f"center_crop must be between {MIN_CENTER_CROP} and 1 (the share of each side kept)",
            self.center_crop,
        )
        _check(
            self.backbone in TORCHVISION_BACKBONES
            or (self.backbone.startswith(TIMM_PREFIX) and len(self.backbone) > len(TIMM_PREFIX)),
            f"backbone must be one of {', '.join(TORCHVISION_BACKBONES)} or 'timm:<model name>'",
            self.backbone,
        )
        for name in (
            "num_vectors",
            "vector_dim",
            "capsule_dim",
            "routing_iterations",
            "se_reduction",
        ):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1", getattr(self, name))
        _check(self.squash_a is None or self.squash_a > 0, "squash_a must be > 0", self.squash_a)
        _check(self.squash_eps > 0, "squash_eps must be > 0", self.squash_eps)
        _check(
            len(self.pyramid_scales) > 0 and all(s >= 1 for s in self.pyramid_scales),
            "pyramid_scales must be a non-empty list of sides >= 1",
            self.pyramid_scales,
        )
        _check(
            not self.pyramid_channels or len(self.pyramid_channels) == len(self.pyramid_scales),
            "pyramid_channels must be empty or have one entry per pyramid scale",
            self.pyramid_channels,
        )
        _check(
            all(c % self.capsule_dim == 0 for c in self.pyramid_channels),
            f"every pyramid_channels entry must be a multiple of capsule_dim={self.capsule_dim}",
            self.pyramid_channels,
        )
        _check(
            len(self.upsample_hidden) == 2 and min(self.upsample_hidden) >= 1,
            "upsample_hidden must be two positive widths",
            self.upsample_hidden,
        )
        _check(
            self.decoder_init in DECODER_INITS,
            f"decoder_init must be one of {', '.join(DECODER_INITS)}",
            self.decoder_init,
        )
        _check(
            all(c >= 1 for c in self.decoder_channels),
            "decoder_channels must be positive widths",
            self.decoder_channels,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        """Build a config from a mapping (e.g. parsed JSON/YAML); unknown keys are rejected.

        Use :func:`with_legacy_values` first for a config saved by an earlier piade.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(
                f"unknown model setting(s) {', '.join(unknown)}; valid settings: "
                f"{', '.join(fields)}"
            )
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
        }
        return cls(**kwargs)


def check_field_types(settings: object) -> None:
    """ConfigError naming the first field of the dataclass ``settings`` whose value has the wrong type.

    Checked before any range check, so ``epochs="3"`` or ``image_size=120.0`` is one clear error
    instead of a TypeError from a comparison, or a failure deep inside torch much later.
    """
    hints = typing.get_type_hints(type(settings))
    for field in dataclasses.fields(settings):  # type: ignore[arg-type]
        value = getattr(settings, field.name)
        if not _has_type(value, hints[field.name]):
            raise ConfigError(
                f"{type(settings).__name__}: {field.name} must be {_type_name(hints[field.name])}"
                f" (got {type(value).__name__} {value!r})"
            )


def _has_type(value: object, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_has_type(value, arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_has_type(item, args[0]) for item in value)
        return len(value) == len(args) and all(map(_has_type, value, args))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):  # a bool is an int to Python, never a count or a rate here
        allowed = (int,) if hint is int else (int, float)
        return isinstance(value, allowed) and not isinstance(value, bool)
    return hint is Any or isinstance(value, origin or hint)


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is tuple:
        plural = {int: "integers", float: "numbers", str: "strings"}
        return f"a tuple of {plural.get(args[0], _type_name(args[0]))}" if args else "a tuple"
    if hint is type(None):
        return "None"
    return {int: "an integer", float: "a number", str: "a string", bool: "True or False"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def _check(ok: bool, message: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"ModelConfig: {message} (got {value!r})")
