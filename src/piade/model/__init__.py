"""The paper's network, one concept per file, and :func:`build_model` to assemble it."""

from __future__ import annotations

from torch import nn

from piade.config import ModelConfig
from piade.model.decoder import bilinear_orthogonal_
from piade.model.encoder import build_encoder
from piade.model.network import ModelOutput, PyramidalCapsuleAutoencoder
from piade.model.squeeze_excitation import SqueezeExcitation
from piade.weights import WeightsSpec, resolve_weights

__all__ = [
    "ModelOutput",
    "PyramidalCapsuleAutoencoder",
    "bilinear_orthogonal_",
    "build_model",
    "orthogonal_init",
]


def build_model(
    config: ModelConfig | None = None,
    *,
    encoder_weights: WeightsSpec = None,
    initialise: bool = True,
) -> PyramidalCapsuleAutoencoder:
    """Build the network for ``config`` (the paper's defaults when omitted).

    Args:
        config: the architecture.
        encoder_weights: ``None`` (random, the default), ``"imagenet"`` (torch hub cache, then
            download) or a local state_dict file for the backbone; see :mod:`piade.weights`.

    Every weight not loaded from ``encoder_weights`` gets orthogonal initialisation (paper Sec. 4),
    except, with ``config.decoder_init == "bilinear"`` (the default), the decoder's transposed
    convolutions: bilinear upsampling after an orthogonal channel mix (:func:`bilinear_orthogonal_`).
    ``initialise=False`` skips that (PyTorch's default initialisation stays) for a network whose
    weights are loaded next: the orthogonal initialisation's QR decompositions took about half of
    ``piade predict``'s start-up.
    """
    config = config or ModelConfig()
    arch = config.backbone
    state_dict, source = resolve_weights(encoder_weights, arch=arch)
    encoder = build_encoder(
        arch, se_reduction=config.se_reduction, state_dict=state_dict, source=source
    )
    model = PyramidalCapsuleAutoencoder(config, encoder)
    if not initialise:
        return model
    for name, child in model.named_children():
        if name != "encoder":
            orthogonal_init(child)
    for block in encoder.modules():
        if isinstance(block, SqueezeExcitation):
            orthogonal_init(block)
    if state_dict is None:
        orthogonal_init(encoder)
    if config.decoder_init == "bilinear":
        for layer in model.decoder.modules():
            if isinstance(layer, nn.ConvTranspose2d):
                bilinear_orthogonal_(layer)
    return model


def orthogonal_init(module: nn.Module) -> None:
    """Orthogonal weights and zero biases for every convolution and linear layer in ``module``."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
