"""The assembled network: sizes, gradients, determinism, which vector is decoded, initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from piade import ModelConfig, ModelOutput, build_model
from piade.losses import ReconstructionLoss
from piade.model.decoder import bilinear_orthogonal_, halving_chain
from piade.model.network import TIE_MARGIN, longest_vector, squash_constant
from piade.preprocess import to_signed

SIZES = (32, 64, 120, 128, 224, 256)


@pytest.fixture(scope="module")
def small_model() -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelConfig(image_size=32))


@pytest.mark.parametrize("size", SIZES)
def test_reconstruction_is_exactly_the_input_size(size: int) -> None:
    model = build_model(ModelConfig(image_size=size)).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, size, size))
    assert isinstance(out, ModelOutput)
    assert out.reconstruction.shape == (1, 3, size, size)
    assert out.vectors.shape == (1, 2, 64)
    assert out.lengths.shape == (1, 2)
    assert out.decoded.shape == (1,) and out.decoded.dtype == torch.long
    assert out.couplings.shape == (1, model.pyramid.num_capsules, 2)
    assert out.reconstruction.abs().max() <= 1.0


@pytest.mark.parametrize("size", [32, 120])
def test_training_forward_shapes(size: int) -> None:
    model = build_model(ModelConfig(image_size=size)).train()
    out = model(torch.rand(2, 3, size, size))
    assert out.reconstruction.shape == (2, 3, size, size)
    assert torch.equal(out.decoded, torch.zeros(2, dtype=torch.long))


def test_halving_chain_matches_the_encoder() -> None:
    assert halving_chain(120, 5) == [120, 60, 30, 15, 8, 4]
    model = build_model(ModelConfig(image_size=120)).eval()
    with torch.no_grad():
        features = model.encoder(torch.rand(1, 3, 120, 120))
    assert features.shape == (1, 512, 4, 4)


def test_every_parameter_receives_a_gradient(small_model: nn.Module) -> None:
    small_model.train()
    small_model.zero_grad()
    images = torch.rand(4, 3, 32, 32)
    criterion = ReconstructionLoss(nn.Conv2d(3, 4, 3, padding=1))
    out = small_model(images)
    criterion(to_signed(images), out.reconstruction).total.mean().backward()
    for name, parameter in small_model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_eval_is_deterministic(small_model: nn.Module) -> None:
    small_model.eval()
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        first, second = small_model(images), small_model(images)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_train_decodes_vector_zero_and_eval_the_longest() -> None:
    torch.manual_seed(1)
    model = build_model(ModelConfig(image_size=32))
    with torch.no_grad():
        model.routing.weight[:, 0].mul_(0.01)  # vector 0 becomes much shorter than vector 1
    images = torch.rand(3, 3, 32, 32)
    model.train()
    trained = model(images)
    assert trained.decoded.tolist() == [0, 0, 0]
    model.eval()
    with torch.no_grad():
        evaluated = model(images)
        forced = model(images, vector_index=1)
    assert (evaluated.lengths[:, 1] > evaluated.lengths[:, 0]).all()
    assert evaluated.decoded.tolist() == [1, 1, 1]
    assert torch.equal(evaluated.reconstruction, forced.reconstruction)


def test_eval_picks_the_longest_vector_per_image(small_model: nn.Module) -> None:
    small_model.eval()
    images = torch.rand(8, 3, 32, 32)
    with torch.no_grad():
        out = small_model(images)
        assert torch.equal(out.decoded, longest_vector(out.lengths))
        for k in range(2):
            forced = small_model(images, vector_index=k).reconstruction
            chosen = out.decoded == k
            torch.testing.assert_close(out.reconstruction[chosen], forced[chosen])


def test_single_vector_ablation() -> None:
    model = build_model(ModelConfig(image_size=32, num_vectors=1)).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.vectors.shape == (2, 1, 64)
    assert torch.equal(out.couplings, torch.ones_like(out.couplings))
    assert out.decoded.tolist() == [0, 0]


def test_new_weights_are_orthogonal(small_model: nn.Module) -> None:
    linear = small_model.upsampling.layers[0].weight  # (128, 64): orthonormal columns
    torch.testing.assert_close(linear.T @ linear, torch.eye(64), atol=1e-5, rtol=0)
    se = small_model.encoder.stages[0][1].reduce.weight  # (32, 64): orthonormal rows
    torch.testing.assert_close(se @ se.T, torch.eye(32), atol=1e-5, rtol=0)
    w = small_model.routing.weight  # (n, J, 64, 8): every W_ij an isometry
    gram = torch.einsum("njdk,njdl->njkl", w, w)
    torch.testing.assert_close(gram, torch.eye(8).expand_as(gram), atol=1e-5, rtol=0)
    for module in small_model.modules():
        if (
            isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
            and module.bias is not None
        ):
            assert torch.count_nonzero(module.bias) == 0


def test_backbone_without_weights_is_orthogonal_too(small_model: nn.Module) -> None:
    conv1 = small_model.encoder.stages[0][0][0].weight.flatten(1)  # (64, 147): orthonormal rows
    torch.testing.assert_close(conv1 @ conv1.T, torch.eye(64), atol=1e-5, rtol=0)


def test_routing_logits_are_not_parameters(small_model: nn.Module) -> None:
    names = [name for name, _ in small_model.routing.named_parameters()]
    assert names == ["weight"]
    assert not list(small_model.routing.buffers())


def test_pyramid_capsule_count() -> None:
    model = build_model(ModelConfig(image_size=32, pyramid_channels=(64, 32, 16, 8)))
    # 64/8*1 + 32/8*4 + 16/8*16 + 8/8*64 = 8 + 16 + 32 + 64
    assert model.pyramid.num_capsules == 120
    u = model.pyramid(torch.rand(2, 512, 1, 1))
    assert u.shape == (2, 120, 8)


def test_longest_vector_breaks_ties_towards_vector_zero() -> None:
    lengths = torch.tensor([[1.0, 1.0], [0.5, 0.5 + TIE_MARGIN / 2], [0.5, 0.6], [0.7, 0.2]])
    assert longest_vector(lengths).tolist() == [0, 0, 1, 0]
    assert longest_vector(torch.tensor([[0.3]])).tolist() == [0]  # one vector: the ablation


def test_default_squash_constant_leaves_lengths_unsaturated() -> None:
    """a = n d / J^2: in training mode (batch statistics) the lengths sit well inside (0, 1);
    the paper-literal a = 1 puts every length within 1e-3 of 1."""
    torch.manual_seed(0)
    images = torch.rand(8, 3, 32, 32)
    default = build_model(ModelConfig(image_size=32)).train()
    n = default.pyramid.num_capsules
    assert default.routing.a == squash_constant(default.config, n) == n * 8 / 4
    lengths = default(images).lengths
    assert 0.2 < lengths.min() and lengths.max() < 0.9
    literal = build_model(ModelConfig(image_size=32, squash_a=1.0)).train()
    assert literal(images).lengths.min() > 0.999


def test_bilinear_decoder_init_is_a_smooth_upsampler() -> None:
    """Each transposed convolution starts as bilinear interpolation after an orthogonal mix: a
    constant input gives a constant output away from the borders (no checkerboard), which the
    fully orthogonal kernel does not."""
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(16, 8, kernel_size=3, stride=2, padding=1, output_padding=1)
    bilinear_orthogonal_(conv)
    mix = conv.weight[:, :, 1, 1]  # (16, 8): the centre tap is the channel mix itself
    torch.testing.assert_close(mix.T @ mix, torch.eye(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(conv.weight, mix[:, :, None, None] * torch.tensor(
        [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]]))  # fmt: skip
    flat = torch.ones(1, 16, 6, 6) * torch.randn(1, 16, 1, 1)
    inner = conv(flat)[0, :, 1:-2, 1:-2]  # the last row/column only see half the kernel
    assert (inner.std(dim=(1, 2)) < 1e-5).all()
    nn.init.orthogonal_(conv.weight)
    assert (conv(flat)[0, :, 1:-2, 1:-2].std(dim=(1, 2)) > 1e-2).all()


def test_decoder_init_setting_selects_the_kernel() -> None:
    torch.manual_seed(0)
    for init, smooth in (("bilinear", True), ("orthogonal", False)):
        model = build_model(ModelConfig(image_size=32, decoder_init=init))
        first = model.decoder.layers[0].weight  # (1024, 16, 3, 3)
        ratio = first[:, :, 0, 0] / first[:, :, 1, 1]  # corner tap over centre tap
        assert torch.allclose(ratio, torch.full_like(ratio, 0.25)) is smooth
