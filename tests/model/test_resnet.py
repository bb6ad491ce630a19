"""piade's own ResNet and VGG features are torchvision's: same names, same seeded draws, same outputs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.vgg import cfgs, make_layers

from piade.losses import build_perceptual_network
from piade.model.resnet import LAYOUTS, Conv2d, ResNet


def _same_state(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    mine, reference = ours.state_dict(), theirs.state_dict()
    assert list(mine) == list(reference)  # same names, same order
    for key, value in reference.items():
        assert mine[key].shape == value.shape, key
        assert torch.equal(mine[key], value), key


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_a_seeded_resnet_draws_torchvisions_weights(name: str) -> None:
    torch.manual_seed(3)
    ours = ResNet(name)
    torch.manual_seed(3)
    theirs = torchvision.models.get_model(name, weights=None)
    _same_state(ours, theirs)


def test_resnet_computes_what_torchvision_computes() -> None:
    theirs = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # move batch norm off its identity so the test sees its statistics
        for module in theirs.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    ours = ResNet("resnet18")
    ours.load_state_dict(theirs.state_dict())
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for mode in ("train", "eval"):
        ours.train(mode == "train")
        theirs.train(mode == "train")
        with torch.no_grad():
            torch.testing.assert_close(ours(images), theirs(images), rtol=0, atol=0)


ONE_PIXEL = [  # (in, out, kernel, stride, padding, input size): each gives a one-pixel output
    (8, 6, 3, 1, 1, 1),  # the last stage's 3 x 3 convolutions at 32 px
    (8, 6, 3, 2, 1, 2),  # its first, strided, from 2 x 2
    (8, 6, 1, 2, 0, 2),  # its shortcut
    (4, 5, 3, 2, 0, 3),  # a window without padding
]


@pytest.mark.parametrize(("c_in", "c_out", "kernel", "stride", "padding", "size"), ONE_PIXEL)
def test_a_one_pixel_output_is_the_convolution_as_a_matrix_product(
    c_in: int, c_out: int, kernel: int, stride: int, padding: int, size: int, monkeypatch
) -> None:
    torch.manual_seed(0)
    ours = Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=True).double()
    reference = torch.nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding).double()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(3, c_in, size, size, dtype=torch.float64)
    grad = torch.randn(3, c_out, 1, 1, dtype=torch.float64)
    results = []
    for module in (reference, ours):
        if module is ours:  # from here on, no convolution kernel may run

            def refuse(*args: object) -> None:
                raise AssertionError("ran a convolution")

            monkeypatch.setattr(torch.nn.Conv2d, "_conv_forward", refuse)
        inputs = x.clone().requires_grad_()
        out = module(inputs)
        out.backward(grad)
        results.append((out, inputs.grad, module.weight.grad, module.bias.grad))
        module.zero_grad()
    for theirs, mine in zip(*results, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-12)


def test_larger_outputs_are_convolutions() -> None:
    conv = Conv2d(8, 6, 3, padding=1)
    assert conv.matmul_window(1, 1) is not None
    assert conv.matmul_window(2, 2) is None  # 2 x 2 output
    assert conv.matmul_window(1, 2) is None  # 1 x 2 output
    assert Conv2d(8, 6, 3, padding=1, groups=2).matmul_window(1, 1) is None
    assert Conv2d(8, 6, 3, padding=1, padding_mode="reflect").matmul_window(1, 1) is None
    assert Conv2d(8, 6, 3, padding=2, dilation=2).matmul_window(1, 1) is None


def test_resnet_at_32_px_computes_what_torchvision_computes() -> None:
    """At 32 px the last stage runs on 2 x 2 and 1 x 1 maps: matrix products, the same values
    and gradients (float64: in float32 batch norm over four images amplifies rounding)."""
    theirs = torchvision.models.resnet18(weights=None).double()
    ours = ResNet("resnet18").double()
    ours.load_state_dict(theirs.state_dict())
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)).double()
    outputs = [model(images) for model in (ours, theirs)]
    for out in outputs:
        out.square().sum().backward()
    torch.testing.assert_close(*outputs, rtol=1e-10, atol=1e-10)
    for (name, mine), reference in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(mine.grad, reference.grad, rtol=1e-8, atol=1e-10, msg=name)


def test_an_unknown_resnet_is_named() -> None:
    with pytest.raises(ValueError, match="resnet99"):
        ResNet("resnet99")


@pytest.mark.parametrize(("name", "config"), [("vgg11", "A"), ("vgg16", "D")])
@pytest.mark.parametrize("depth", [4, 9])
def test_vgg_features_are_torchvisions(name: str, config: str, depth: int) -> None:
    torch.manual_seed(5)
    ours = build_perceptual_network(name, weights=None, depth=depth)
    torch.manual_seed(5)  # the reference: torchvision's make_layers over growing prefixes
    for end in range(1, len(cfgs[config]) + 1):
        reference = make_layers(cfgs[config][:end])
        if len(reference) >= depth:
            break
    _same_state(ours, reference[:depth])
    whole = torchvision.models.get_model(name, weights=None).features[:depth]
    assert [type(m) for m in ours] == [type(m) for m in whole]
    assert list(ours.state_dict()) == list(whole.state_dict())  # ImageNet files load as features.N
