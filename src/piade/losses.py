"""The paper's objective (Sec. 3.2), per image: MSE + λ1 · perceptual + λ2 · (1 − SSIM).

Every term is returned per image, shape (B,), because the total is also the anomaly score. The
decoder's output is in [-1, 1]; SSIM always compares the images mapped back to [0, 1]. With
``convention="authors"`` (the default) the other terms take the units of the authors' released
code: the MSE of the images in [0, 1] and the perceptual network fed those images as they are.
With ``convention="design"`` (DESIGN.md; runs and model files saved before the option) the MSE
compares the [-1, 1] images (four times the figure) and the perceptual network receives the
[0, 1] images after ImageNet normalisation.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from piade.config import (
    DEFAULT_LOSS_CONVENTION,
    LOSS_CONVENTIONS,
    VGG_LAYOUTS,
    check_perceptual_depth,
)
from piade.errors import ConfigError
from piade.preprocess import imagenet_stats
from piade.weights import WeightsSpec, load_into, resolve_weights


class LossTerms(NamedTuple):
    """Per-image loss terms, each (B,).

    Attributes:
        mse: mean squared error over pixels and channels, in the [-1, 1] range.
        perceptual: mean squared error between the perceptual network's features.
        ssim: the mean SSIM index over pixels and channels (1 = identical).
        total: ``mse + λ1 * perceptual + λ2 * (1 - ssim)`` — the training loss and anomaly score.
    """

    mse: torch.Tensor
    perceptual: torch.Tensor
    ssim: torch.Tensor
    total: torch.Tensor


def gaussian_window(
    size: int = 11,
    sigma: float = 1.5,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Normalised 1-D Gaussian of ``size`` taps (radius 5 at σ 1.5, as scikit-image truncates)."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def _symmetric_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims by mirroring with the edge repeated (scipy's 'reflect' mode)."""
    for dim in (-2, -1):
        n = x.shape[dim]
        if n >= pad:  # flipped slices: far cheaper than a gather, forward and backward
            before, after = x.narrow(dim, 0, pad).flip(dim), x.narrow(dim, n - pad, pad).flip(dim)
            x = torch.cat([before, x, after], dim=dim)
        else:  # fewer pixels than the padding: the gather repeats the edge as needed
            x = _gather_symmetric_pad(x, pad, dim)
    return x


def _gather_symmetric_pad(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """:func:`_symmetric_pad` along one dim as a gather (``index_select``), for any size."""
    n = x.shape[dim]
    index = torch.cat(
        [torch.arange(pad - 1, -1, -1), torch.arange(n), torch.arange(n - 1, n - 1 - pad, -1)]
    )
    return x.index_select(dim, index.clamp(0, n - 1).to(x.device))


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    window_size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM (Eq. 4) of two image batches (B, C, H, W) with a Gaussian window.

    Local statistics use an 11-tap Gaussian (σ 1.5) with symmetric border padding and population
    (co)variances — the map equals scikit-image's ``structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, full=True)`` per channel.

    Returns:
        (B,) the mean of the map over channels and all pixels, borders included (scikit-image's
        scalar crops a 5-pixel border instead), and the (B, C, H, W) per-pixel SSIM map.
    """
    channels = x.shape[1]
    g = gaussian_window(window_size, sigma, dtype=x.dtype, device=x.device)
    # Moments of mean-centred images: variances and covariance do not change, and float32 keeps
    # far more precision in E[x^2] - E[x]^2 when the values are near zero.
    shift_x, shift_y = x.mean(dim=(2, 3), keepdim=True), y.mean(dim=(2, 3), keepdim=True)
    x, y = x - shift_x, y - shift_y
    stats = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W)
    stats = _symmetric_pad(stats, window_size // 2)
    stats = F.conv2d(
        stats, g.reshape(1, 1, 1, -1).expand(5 * channels, 1, 1, -1), groups=5 * channels
    )
    stats = F.conv2d(
        stats, g.reshape(1, 1, -1, 1).expand(5 * channels, 1, -1, 1), groups=5 * channels
    )
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.chunk(5, dim=1)  # each (B, C, H, W)
    var_x, var_y = e_xx - mu_x * mu_x, e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    mu_x, mu_y = mu_x + shift_x, mu_y + shift_y  # (B, C, H, W): local means of the inputs
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    return ssim_map.mean(dim=(1, 2, 3)), ssim_map


def squared_feature_distance(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean over channels of ``(features - target)²``, (B, h, w).

    With gradients it runs as one autograd function that keeps only the difference and computes
    the gradient in one broadcast multiplication: autograd's own graph of ``sub``, ``pow`` and
    ``mean`` takes five more passes over the (B, 64, H, W) features in the backward pass (``div``,
    ``pow``, two ``mul``, ``neg``) and a layout copy, about a fifth of a 120 px training step with
    VGG-16's first block (docs/performance.md). The value is the same either way, bit for bit.
    """
    if (
        torch.is_grad_enabled()
        and features.requires_grad
        and not target.requires_grad
        and not torch.jit.is_tracing()
    ):
        return _SquaredFeatureDistance.apply(features, target)
    return (target - features).pow(2).mean(dim=1)


class _SquaredFeatureDistance(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        difference = features - target
        ctx.save_for_backward(difference)
        return (difference * difference).mean(dim=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (difference,) = ctx.saved_tensors
        return difference * (grad * (2 / difference.shape[1])).unsqueeze(1), None


def build_perceptual_network(
    name: str = "vgg11", *, weights: WeightsSpec = None, depth: int = 4
) -> nn.Sequential:
    """The first ``depth`` modules of a torchvision VGG's ``features`` (``vgg11().features[:4]``).

    ``weights`` is ``None`` (random), ``"imagenet"`` or a local torchvision-format file (either the
    whole VGG state_dict or only its ``features.N.*`` keys). The network is frozen and in eval mode.
    """
    features = _vgg_features(name, depth)  # ConfigError for an unknown name or depth
    state_dict, source = resolve_weights(weights, arch=name)
    if state_dict is not None:
        own = {}
        for key, value in state_dict.items():
            parts = key.removeprefix("features.").split(".", 1)
            if key.startswith("features.") and int(parts[0]) < depth:
                own[".".join(parts)] = value
        load_into(features, own, source=source)
    features.requires_grad_(False)
    return features.eval()


def _vgg_features(name: str, depth: int) -> nn.Sequential:
    """``torchvision.models.<name>().features[:depth]``, built without the rest of the VGG.

    Built here rather than imported from torchvision, whose import costs seconds on every command
    (docs/performance.md). The module indices are torchvision's, so its ImageNet files load as
    ``features.N.*``. Each prefix is built in turn, as piade always built these layers, so a seeded
    random network keeps its weights from one piade version to the next.
    """
    check_perceptual_depth(name, depth)
    layout = VGG_LAYOUTS[name]
    for end in range(1, len(layout) + 1):
        layers = _vgg_layers(layout[:end])
        if len(layers) >= depth:
            return layers[:depth]
    raise AssertionError("unreachable: check_perceptual_depth bounds the depth")


def _vgg_layers(layout: list[int | str]) -> nn.Sequential:
    """A conv entry gives (3×3 Conv2d, ReLU), ``"M"`` a 2×2 max-pool."""
    layers: list[nn.Module] = []
    channels = 3
    for entry in layout:
        if entry == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            width = int(entry)
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = width
    return nn.Sequential(*layers)


class ReconstructionLoss(nn.Module):
    """The paper's total loss, per image. ``forward(target, reconstruction)``, both in [-1, 1].

    Args:
        perceptual_net: a frozen feature network taking RGB images, in [0, 1] or
            ImageNet-normalised as ``convention`` says (``build_perceptual_network()`` by default;
            inject any module, e.g. a test stub).
        perceptual_weight: λ1. ssim_weight: λ2 (both 1 in the paper).
        convention: the terms' units, one of :data:`piade.config.LOSS_CONVENTIONS` (see the
            module doc).
    """

    def __init__(
        self,
        perceptual_net: nn.Module | None = None,
        *,
        perceptual_weight: float = 1.0,
        ssim_weight: float = 1.0,
        convention: str = DEFAULT_LOSS_CONVENTION,
    ) -> None:
        super().__init__()
        if convention not in LOSS_CONVENTIONS:
            raise ConfigError(
                f"loss convention must be one of {LOSS_CONVENTIONS}, got {convention!r}"
            )
        self.convention = convention
        self.perceptual_net = (
            perceptual_net if perceptual_net is not None else (build_perceptual_network())
        )
        self.perceptual_net.requires_grad_(False).eval()
        self.perceptual_weight, self.ssim_weight = perceptual_weight, ssim_weight
        mean, std = imagenet_stats()
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def train(self, mode: bool = True) -> ReconstructionLoss:
        """The perceptual network stays in eval mode whatever the loss module's mode."""
        super().train(mode)
        self.perceptual_net.eval()
        return self

    def perceptual_features(self, images: torch.Tensor) -> torch.Tensor:
        """Features of images in [-1, 1] (mapped to [0, 1], then ImageNet-normalised unless the
        convention is the authors')."""
        unit = (images + 1) / 2
        if self.convention == "authors":
            return self.perceptual_net(unit)
        return self.perceptual_net((unit - self.mean) / self.std)

    def residuals(
        self,
        target: torch.Tensor,
        reconstruction: torch.Tensor,
        target_features: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-pixel maps whose spatial means are the loss terms, each averaged over channels.

        Returns ``mse`` (B, H, W) squared error, ``ssim`` (B, H, W) SSIM index map and
        ``perceptual`` (B, h, w) squared feature difference at the feature network's resolution.
        ``target_features``: :meth:`perceptual_features` of ``target`` computed earlier (training
        keeps them for every image, :func:`piade.train.loop.perceptual_targets`), or None.
        """
        if target_features is None:
            with torch.no_grad():
                target_features = self.perceptual_features(target)
        # λ1 = 0 (e.g. the MSE + SSIM ablation): the term is still reported, but no gradient
        # flows through the perceptual network, so its backward pass is not built
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.perceptual_weight != 0):
            features = self.perceptual_features(reconstruction)
        _, ssim_map = ssim((target + 1) / 2, (reconstruction + 1) / 2)  # (B, C, H, W)
        difference = target - reconstruction
        if self.convention == "authors":
            difference = difference / 2  # of the images in [0, 1]
        return {
            "mse": difference.pow(2).mean(dim=1),
            "perceptual": squared_feature_distance(features, target_features),
            "ssim": ssim_map.mean(dim=1),
        }

    def terms(self, residuals: dict[str, torch.Tensor]) -> LossTerms:
        """The loss terms (B,) from :meth:`residuals`' maps."""
        mse, perceptual, similarity = (
            residuals[k].mean(dim=(1, 2)) for k in ("mse", "perceptual", "ssim")
        )
        total = mse + self.perceptual_weight * perceptual + self.ssim_weight * (1 - similarity)
        return LossTerms(mse, perceptual, similarity, total)

    def forward(
        self,
        target: torch.Tensor,
        reconstruction: torch.Tensor,
        target_features: torch.Tensor | None = None,
    ) -> LossTerms:
        return self.terms(self.residuals(target, reconstruction, target_features))
