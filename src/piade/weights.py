"""Pretrained weights, offline first.

A weights argument is one of:

* ``None`` or ``"none"`` — random initialisation;
* a local file — a state_dict in the backbone's own key format (torchvision's, or timm's for a
  ``timm:`` backbone), read with ``torch.load(weights_only=True)``, so it never runs code;
* ``"imagenet"`` — torchvision's ImageNet file, looked up in the torch hub cache
  (``$TORCH_HOME/hub/checkpoints/<torchvision's file name>``) and downloaded there only when that
  fails and the network is reachable. When neither works, one :class:`WeightsError` says which file is
  missing, where it was looked for, and how to pass a local file instead.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from piade.errors import WeightsError

log = logging.getLogger(__name__)

WeightsSpec = str | os.PathLike[str] | None

# torchvision weight enums of the ImageNet files the paper's setting uses (the original V1 releases).
IMAGENET_WEIGHTS = {
    "resnet18": "ResNet18_Weights.IMAGENET1K_V1",
    "resnet34": "ResNet34_Weights.IMAGENET1K_V1",
    "resnet50": "ResNet50_Weights.IMAGENET1K_V1",
    "vgg11": "VGG11_Weights.IMAGENET1K_V1",
    "vgg16": "VGG16_Weights.IMAGENET1K_V1",
}


def resolve_weights(
    spec: WeightsSpec, *, arch: str, allow_download: bool = True
) -> tuple[dict[str, torch.Tensor] | None, str]:
    """Turn a weights argument into ``(state_dict or None, description of where it came from)``.

    Args:
        spec: ``None``/"none", "imagenet", or a path to a local state_dict file.
        arch: the architecture the weights are for: a key of :data:`IMAGENET_WEIGHTS` or
            ``"timm:<name>"``.
        allow_download: try torchvision's download when "imagenet" is not in the cache.
    """
    if spec is None or _is_random(spec):
        return None, "random initialisation"
    if isinstance(spec, str) and spec.lower() == "imagenet":
        if arch.startswith("timm:"):
            return _timm_imagenet(arch.removeprefix("timm:")), f"timm ImageNet weights of {arch}"
        path = imagenet_file(arch, allow_download=allow_download)
        return load_state_dict_file(path), str(path)
    path = _existing_file(spec)
    return load_state_dict_file(path), str(path)


def check_weights(spec: WeightsSpec, *, arch: str) -> None:
    """The WeightsError :func:`resolve_weights` would raise for a missing file, without loading.

    ``piade fit`` calls it once the images are found and before any is decoded, so a missing
    ImageNet file (or a mistyped path) is reported at once rather than after the decoding. An
    "imagenet" spec is looked up in the torch hub cache and downloaded if absent, as training
    would; timm's weights are left to :func:`resolve_weights`.
    """
    if spec is None or _is_random(spec):
        return
    if isinstance(spec, str) and spec.lower() == "imagenet":
        if not arch.startswith("timm:"):
            imagenet_file(arch)
        return
    _existing_file(spec)


def _is_random(spec: str | os.PathLike[str]) -> bool:
    return isinstance(spec, str) and spec.lower() in ("", "none", "random")


def _existing_file(spec: str | os.PathLike[str]) -> Path:
    path = Path(spec)
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} does not exist; pass an existing state_dict file, "
            "'imagenet' (torch hub cache or download) or 'none' (random initialisation)"
        )
    return path


def imagenet_file(arch: str, *, allow_download: bool = True) -> Path:
    """Path of torchvision's ImageNet file for ``arch``: from the hub cache, else downloaded."""
    if arch not in IMAGENET_WEIGHTS:
        raise WeightsError(
            f"no ImageNet weights are known for {arch!r}; known: {', '.join(IMAGENET_WEIGHTS)}"
        )
    import torchvision  # here only: its import costs seconds (docs/performance.md)

    url = torchvision.models.get_weight(IMAGENET_WEIGHTS[arch]).url
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cached = cache_dir / url.rsplit("/", 1)[-1]
    if cached.is_file():
        log.info("using cached ImageNet weights %s", cached)
        return cached
    reason = "downloads are disabled"
    if allow_download:
        try:
            torch.hub.load_state_dict_from_url(
                url, model_dir=str(cache_dir), progress=True, check_hash=True, weights_only=True
            )
            if cached.is_file():
                return cached
            reason = "the download left no file"
        except (
            Exception
        ) as error:  # any failure (offline, proxy, disk) ends in the one message below
            reason = f"the download failed ({type(error).__name__}: {error})"
    raise WeightsError(
        f"ImageNet weights for {arch} not found: {cached.name} is not in {cache_dir} and {reason}. "
        f"Copy {cached.name} (from {url}) into {cache_dir}, or pass a local state_dict file "
        "instead of 'imagenet', or 'none' for random initialisation"
    )


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state_dict saved with ``torch.save`` without unpickling arbitrary objects."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused an object: nothing was run
        raise WeightsError(
            f"weights file {path} holds Python objects other than tensors (a pickle that could "
            "run code); it was not loaded. Save a plain state_dict with torch.save(model."
            "state_dict(), path) or pass another file"
        ) from error
    except Exception as error:
        raise WeightsError(
            f"cannot read weights file {path}: {type(error).__name__}: {error}. It must be a "
            "PyTorch state_dict (a dict of tensors) saved with torch.save"
        ) from error
    return _unwrap(obj, path)


def load_into(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    ignore_prefixes: Iterable[str] = (),
    ignore_unexpected: bool = False,
) -> None:
    """Load ``state_dict`` into ``module``; every parameter of the module must be covered.

    Keys starting with one of ``ignore_prefixes`` (e.g. a classifier head) are dropped first. Keys
    the module does not have are an error unless ``ignore_unexpected``.
    """
    prefixes = tuple(ignore_prefixes)
    wanted = {k: v for k, v in state_dict.items() if not (prefixes and k.startswith(prefixes))}
    try:
        result = module.load_state_dict(wanted, strict=False)
    except RuntimeError as error:  # shape mismatches
        raise WeightsError(f"weights from {source} do not fit the network: {error}") from error
    missing = [k for k in result.missing_keys if not (prefixes and k.startswith(prefixes))]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s) e.g. {missing[:3]}")
    if result.unexpected_keys and not ignore_unexpected:
        problems.append(
            f"{len(result.unexpected_keys)} unexpected key(s) e.g. {result.unexpected_keys[:3]}"
        )
    if problems:
        raise WeightsError(
            f"weights from {source} do not match {type(module).__name__}: {'; '.join(problems)}. "
            "Pass a state_dict of the same architecture in its original key format"
        )


def import_timm() -> ModuleType:
    """Import the optional ``timm`` package or explain how to install it."""
    try:
        import timm
    except ImportError as error:
        raise WeightsError(
            "timm backbones need the optional 'timm' package: pip install 'piade[timm]'"
        ) from error
    return timm


def _timm_imagenet(name: str) -> dict[str, torch.Tensor]:
    timm = import_timm()
    try:
        model = timm.create_model(name, pretrained=True, features_only=True)
    except Exception as error:
        raise WeightsError(
            f"timm ImageNet weights for {name} are not available ({type(error).__name__}: {error}). "
            "Download them where there is internet and pass the state_dict file path instead"
        ) from error
    return dict(model.state_dict())


def _unwrap(obj: Any, path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Accept a bare state_dict, or one nested under 'state_dict'/'model'; drop DDP's 'module.'."""
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path} does not hold a state_dict (a dict of tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}
