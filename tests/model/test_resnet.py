"""piade's own ResNet and VGG features are torchvision's: same names, same seeded draws, same outputs."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.vgg import cfgs, make_layers

from piade.losses import build_perceptual_network
from piade.model.resnet import LAYOUTS, ResNet


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
