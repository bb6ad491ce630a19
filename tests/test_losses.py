"""The loss terms: SSIM against scikit-image, per-image values, the frozen perceptual network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity
from torch import nn

from piade.errors import ConfigError
from piade.losses import (
    ReconstructionLoss,
    _gather_symmetric_pad,
    _symmetric_pad,
    build_perceptual_network,
    squared_feature_distance,
    ssim,
)


def _skimage_ssim(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    return structural_similarity(  # type: ignore[no-any-return]
        x,
        y,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1,
        channel_axis=0,
        full=True,
    )


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 41, 29), (1, 64, 48)])
def test_ssim_matches_scikit_image(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    x = rng.random(shape)
    y = np.clip(x + rng.normal(0, 0.2, shape), 0, 1)  # correlated, so SSIM is far from 0
    reference_mean, reference_map = _skimage_ssim(x, y)
    mean, ssim_map = ssim(torch.from_numpy(x)[None].float(), torch.from_numpy(y)[None].float())
    np.testing.assert_allclose(ssim_map[0].double().numpy(), reference_map, atol=1e-4)
    cropped = ssim_map[0, :, 5:-5, 5:-5].double().mean().item()  # scikit-image crops 5 px
    assert cropped == pytest.approx(reference_mean, abs=1e-4)
    assert mean.item() == pytest.approx(reference_map.mean(), abs=1e-4)


def test_ssim_of_identical_images_is_one() -> None:
    x = torch.rand(2, 3, 32, 32)
    mean, ssim_map = ssim(x, x)
    torch.testing.assert_close(mean, torch.ones(2))
    torch.testing.assert_close(ssim_map, torch.ones_like(ssim_map))


class _Stub(nn.Module):
    """A fixed 'perceptual network': one random conv, for tests."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def test_terms_are_per_image_and_add_up() -> None:
    torch.manual_seed(0)
    criterion = ReconstructionLoss(_Stub(), perceptual_weight=0.5, ssim_weight=2.0)
    target = torch.rand(3, 3, 32, 32) * 2 - 1
    reconstruction = torch.tanh(torch.randn(3, 3, 32, 32))
    terms = criterion(target, reconstruction)
    for value in terms:
        assert value.shape == (3,)
    torch.testing.assert_close(
        terms.total, terms.mse + 0.5 * terms.perceptual + 2.0 * (1 - terms.ssim)
    )
    # the default units (the authors'): the MSE of the images mapped to [0, 1]
    expected_mse = F.mse_loss((reconstruction + 1) / 2, (target + 1) / 2, reduction="none")
    torch.testing.assert_close(terms.mse, expected_mse.mean(dim=(1, 2, 3)))
    for k in range(3):  # each image's terms do not depend on the rest of the batch
        alone = criterion(target[k : k + 1], reconstruction[k : k + 1])
        torch.testing.assert_close(alone.total, terms.total[k : k + 1])


def test_a_zero_perceptual_weight_builds_no_backward_through_the_perceptual_network() -> None:
    """λ1 = 0: the term is still reported, the gradient is that of MSE + SSIM, and no gradient
    is computed through the perceptual network (its backward pass would cost a VGG pass)."""
    torch.manual_seed(0)
    stub = _Stub().requires_grad_(False)
    backward_calls = []
    stub.register_full_backward_hook(lambda *args: backward_calls.append(1))
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    reconstruction = torch.tanh(torch.randn(2, 3, 16, 16)).requires_grad_()
    terms = ReconstructionLoss(stub, perceptual_weight=0.0)(target, reconstruction)
    (gradient,) = torch.autograd.grad(terms.total.sum(), reconstruction)
    assert backward_calls == []
    assert terms.perceptual.min() > 0  # still measured, for the logs and the score
    without = ReconstructionLoss(stub, perceptual_weight=0.0)
    reference = reconstruction.detach().requires_grad_()
    with torch.no_grad():
        features = without.perceptual_features(target)
    mse_ssim = without(target, reference, features)
    (expected,) = torch.autograd.grad((mse_ssim.mse + 1 - mse_ssim.ssim).sum(), reference)
    torch.testing.assert_close(gradient, expected)
    weighted = ReconstructionLoss(stub, perceptual_weight=1.0)(target, reconstruction)
    weighted.total.sum().backward()
    assert backward_calls  # with λ1 > 0 the gradient does flow through it


def test_the_design_convention_feeds_imagenet_normalised_features() -> None:
    stub = _Stub()
    criterion = ReconstructionLoss(stub, convention="design")
    target, reconstruction = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        a, b = stub(((target + 1) / 2 - mean) / std), stub(((reconstruction + 1) / 2 - mean) / std)
    expected = (a - b).pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(criterion(target, reconstruction).perceptual, expected)


def test_the_authors_convention_takes_the_units_of_their_code() -> None:
    """MSE of the images in [0, 1] (a quarter of the [-1, 1] figure), the perceptual network fed
    the [0, 1] images without normalisation, SSIM unchanged."""
    stub = _Stub()
    design, authors = ReconstructionLoss(stub, convention="design"), ReconstructionLoss(stub)
    assert authors.convention == "authors"  # the default
    target, reconstruction = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    ours, theirs = design(target, reconstruction), authors(target, reconstruction)
    torch.testing.assert_close(theirs.mse, ours.mse / 4)
    torch.testing.assert_close(theirs.ssim, ours.ssim)
    with torch.no_grad():
        a, b = stub((target + 1) / 2), stub((reconstruction + 1) / 2)
    torch.testing.assert_close(theirs.perceptual, (a - b).pow(2).mean(dim=(1, 2, 3)))
    assert not torch.allclose(theirs.perceptual, ours.perceptual)
    with pytest.raises(ConfigError, match="loss convention must be one of"):
        ReconstructionLoss(stub, convention="paper")


def test_perfect_reconstruction_has_zero_loss() -> None:
    criterion = ReconstructionLoss(_Stub())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(criterion(x, x).total, torch.zeros(2), atol=1e-6, rtol=0)


def test_perceptual_network_is_frozen_and_stays_in_eval_mode() -> None:
    net = build_perceptual_network("vgg11")
    assert len(net) == 4 and isinstance(net[3], nn.Conv2d) and net[3].out_channels == 128
    criterion = ReconstructionLoss(net).train()
    assert not net.training
    reconstruction = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    criterion(torch.rand(2, 3, 32, 32) * 2 - 1, reconstruction).total.sum().backward()
    assert reconstruction.grad is not None and reconstruction.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())


def test_vgg16_features_can_replace_vgg11() -> None:
    net = build_perceptual_network("vgg16")
    assert [type(m).__name__ for m in net] == ["Conv2d", "ReLU", "Conv2d", "ReLU"]


def test_vgg16_at_depth_6_ends_where_vgg11_at_depth_4_does() -> None:
    """conv2_1 before its ReLU, after one max-pool: 128 channels at half the input's side."""
    deep = build_perceptual_network("vgg16", depth=6)
    paper = build_perceptual_network("vgg11")
    assert [type(m).__name__ for m in deep][-2:] == ["MaxPool2d", "Conv2d"]
    image = torch.rand(1, 3, 32, 32)
    assert deep(image).shape == paper(image).shape == (1, 128, 16, 16)
    with pytest.raises(ValueError, match="choose 1 to 31"):
        build_perceptual_network("vgg16", depth=40)


def test_unknown_perceptual_network_is_rejected() -> None:
    with pytest.raises(ValueError, match="vgg11"):
        build_perceptual_network("alexnet")


@pytest.mark.parametrize("side", [3, 5, 12])
def test_symmetric_padding_by_slices_equals_the_gather(side: int) -> None:
    """Flipped slices (sides >= the padding) and the gather fallback pad alike."""
    x = torch.rand(2, 5, side, side)
    gathered = _gather_symmetric_pad(_gather_symmetric_pad(x, 5, -2), 5, -1)
    assert torch.equal(_symmetric_pad(x, 5), gathered)
    assert torch.equal(gathered[..., 5:-5, 5:-5], x)
    assert torch.equal(gathered[..., 5, 4], x[..., 0, 0])  # the edge is repeated


def test_squared_feature_distance_has_autograds_value_and_gradient() -> None:
    """The fused function gives the plain formula's value and gradient, in the same layout."""
    torch.manual_seed(0)
    target = torch.randn(2, 6, 5, 7).to(memory_format=torch.channels_last)
    features = torch.randn(2, 6, 5, 7).to(memory_format=torch.channels_last).requires_grad_()
    weight = torch.rand(2, 5, 7)
    fused = squared_feature_distance(features, target)
    (fused * weight).sum().backward()
    fused_grad = features.grad
    features.grad = None
    plain = (target - features).pow(2).mean(dim=1)
    (plain * weight).sum().backward()
    assert torch.equal(fused, plain)
    assert fused_grad is not None and features.grad is not None
    torch.testing.assert_close(fused_grad, features.grad)
    assert fused_grad.is_contiguous(memory_format=torch.channels_last)
    double = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    fixed = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: squared_feature_distance(f, fixed), (double,))


def test_squared_feature_distance_passes_gradients_to_a_target_that_needs_them() -> None:
    features = torch.randn(1, 4, 3, 3, requires_grad=True)
    target = torch.randn(1, 4, 3, 3, requires_grad=True)
    squared_feature_distance(features, target).sum().backward()
    assert target.grad is not None
    torch.testing.assert_close(target.grad, -features.grad)  # type: ignore[operator]
