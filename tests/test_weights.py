"""Offline-first weights: hub cache lookup, local files, clear errors, no network access."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
import torchvision

from piade import ModelConfig, build_model
from piade.errors import WeightsError
from piade.losses import build_perceptual_network
from piade.weights import imagenet_file, resolve_weights


def _resnet18_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return torchvision.models.resnet18(weights=None).state_dict()


def test_imagenet_weights_are_found_in_the_hub_cache(
    torch_hub_checkpoints: Path, offline: list[object]
) -> None:
    state = _resnet18_state()
    torch.save(state, torch_hub_checkpoints / "resnet18-f37072fd.pth")
    model = build_model(ModelConfig(image_size=32), encoder_weights="imagenet")
    conv1 = model.encoder.stages[0][0][0]
    assert torch.equal(conv1.weight, state["conv1.weight"])
    assert torch.equal(
        model.encoder.stages[4][0][1].bn2.running_var, state["layer4.1.bn2.running_var"]
    )
    assert offline == []  # nothing tried the network


def test_missing_imagenet_weights_give_one_clear_error(torch_hub_checkpoints: Path) -> None:
    with pytest.raises(WeightsError) as caught:
        build_model(ModelConfig(image_size=32), encoder_weights="imagenet")
    message = str(caught.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(torch_hub_checkpoints) in message
    assert "local state_dict file" in message
    assert not any(torch_hub_checkpoints.iterdir())  # no partial download left behind


def test_downloads_can_be_switched_off(offline: list[object]) -> None:
    with pytest.raises(WeightsError, match="downloads are disabled"):
        imagenet_file("vgg11", allow_download=False)
    assert offline == []


def test_local_resnet_file_is_loaded(tmp_path: Path) -> None:
    state = _resnet18_state()
    path = tmp_path / "my-resnet18.pth"
    torch.save(state, path)
    model = build_model(ModelConfig(image_size=32), encoder_weights=path)
    assert torch.equal(model.encoder.stages[1][0][0].conv1.weight, state["layer1.0.conv1.weight"])
    # The SE blocks are new: orthogonal, not loaded.
    se = model.encoder.stages[1][1].reduce.weight
    torch.testing.assert_close(se @ se.T, torch.eye(se.shape[0]), atol=1e-5, rtol=0)


def test_checkpoint_wrappers_and_ddp_prefixes_are_accepted(tmp_path: Path) -> None:
    state = _resnet18_state()
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    loaded, source = resolve_weights(path, arch="resnet18")
    assert loaded is not None and source == str(path)
    assert torch.equal(loaded["conv1.weight"], state["conv1.weight"])


def test_weights_of_another_architecture_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "vgg.pth"
    torch.save(torchvision.models.vgg11(weights=None).features.state_dict(), path)
    with pytest.raises(WeightsError, match=r"do not match|do not fit"):
        build_model(ModelConfig(image_size=32), encoder_weights=path)


def test_missing_local_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"nope\.pth does not exist"):
        resolve_weights(tmp_path / "nope.pth", arch="resnet18")


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch PWNED",))


def test_pickled_code_is_never_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"conv1.weight": _Payload()}, f)
    with pytest.raises(WeightsError, match="could run code\\); it was not loaded") as caught:
        resolve_weights(path, arch="resnet18")
    assert "evil.pth" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "PWNED").exists()


def test_vgg16_convolutions_file_loads_into_the_perceptual_network(tmp_path: Path) -> None:
    # The layout of a features-only VGG-16 file: conv1_1, conv1_2, conv2_1, conv2_2 only.
    features = torchvision.models.vgg16(weights=None).features
    state = {
        f"features.{i}.{p}": getattr(features[i], p).detach().clone()
        for i in (0, 2, 5, 7)
        for p in ("weight", "bias")
    }
    path = tmp_path / "vgg16_features.pth"
    torch.save(state, path)
    net = build_perceptual_network("vgg16", weights=path)
    assert torch.equal(net[2].weight, state["features.2.weight"])


def test_vgg11_imagenet_from_the_hub_cache(torch_hub_checkpoints: Path) -> None:
    state = torchvision.models.vgg11(weights=None).state_dict()
    torch.save(state, torch_hub_checkpoints / "vgg11-8a719046.pth")
    net = build_perceptual_network("vgg11", weights="imagenet")
    assert torch.equal(net[3].weight, state["features.3.weight"])


def test_timm_backbone_with_a_local_weights_file(tmp_path: Path) -> None:
    timm = pytest.importorskip("timm")
    torch.manual_seed(5)
    reference = timm.create_model("efficientnet_lite0", pretrained=False)  # full classifier keys
    path = tmp_path / "efficientnet_lite0.pth"
    torch.save(reference.state_dict(), path)
    model = build_model(
        ModelConfig(image_size=64, backbone="timm:efficientnet_lite0"), encoder_weights=path
    ).eval()
    stem = model.encoder.features.conv_stem.weight
    assert torch.equal(stem, reference.state_dict()["conv_stem.weight"])
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert out.reconstruction.shape == (1, 3, 64, 64)
