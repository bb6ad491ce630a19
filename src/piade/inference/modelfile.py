"""The model file: what a user keeps and ships. One safetensors file, never a pickle.

Tensors: the network's state (``model.*``) and the frozen perceptual network's (``perceptual.*``),
so scoring needs no download. Header metadata (strings): ``format`` = "piade", ``format_version``,
``piade_version``, ``sha256`` (a checksum of every tensor, so a truncated or tampered file is
detected) and ``info``, a JSON document with the model config, the loss settings, the preprocessing
and the calibration statistics.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from piade.errors import PiadeError

FORMAT = "piade"
FORMAT_VERSION = 1
MODEL_FILENAME = "model.safetensors"


class ModelFileError(PiadeError, ValueError):
    """A model file is missing, unreadable, of another format version, or corrupted."""


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """Accept the model file itself or the run directory ``piade fit --out DIR`` wrote it into."""
    path = Path(path)
    if path.is_dir():
        if (path / MODEL_FILENAME).is_file():
            return path / MODEL_FILENAME
        raise ModelFileError(
            f"{path} is a directory without {MODEL_FILENAME}; pass the model file or the --out "
            "directory of a finished 'piade fit' run"
        )
    if not path.is_file():
        raise ModelFileError(
            f"model file {path} does not exist; pass a {MODEL_FILENAME} file or "
            "a 'piade fit' output directory"
        )
    return path


def tensor_checksum(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def write_model_file(
    path: str | os.PathLike[str], tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> Path:
    """Write tensors + info atomically (a temporary file renamed over ``path``)."""
    from piade.version import __version__

    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "piade_version": __version__,
        "sha256": tensor_checksum(tensors),
        "info": json.dumps(info, sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# The first bytes of the files piade refuses to load because loading them can run code.
PICKLE_MAGIC = {
    **{bytes([0x80, protocol]): "a Python pickle" for protocol in range(2, 6)},
    b"PK\x03\x04": "a zip archive (the torch.save format, which holds a pickle)",
}


def _refuse_pickles(path: Path) -> None:
    """ModelFileError for a pickle or ``torch.save`` file, named as such; nothing is unpickled.

    A safetensors file starts with an 8-byte header length and then ``{``; a file with that shape is
    left to the safetensors reader whatever its first bytes are.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError as error:
        raise ModelFileError(f"cannot read model file {path}: {error.strerror or error}") from error
    if head[8:9] == b"{":
        return
    for magic, kind in PICKLE_MAGIC.items():
        if head.startswith(magic):
            raise ModelFileError(
                f"{path} is {kind}, not a piade model file; piade never loads pickles (loading one "
                f"can run code). Use the {MODEL_FILENAME} that 'piade fit' writes"
            )


def read_model_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a model file: returns ``(tensors, info)``. Never unpickles anything."""
    path = resolve_model_path(path)
    _refuse_pickles(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(
            f"{path} is not a readable piade model file ({error}); it may be truncated, or not a "
            "safetensors file — re-export it with 'piade fit' or copy it again"
        ) from error
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a safetensors file but not a piade model file")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ModelFileError(
            f"{path} has piade model format version {version} (written by piade "
            f"{metadata.get('piade_version', '?')}); this piade reads version {FORMAT_VERSION}. "
            "Use the matching piade version or retrain"
        )
    if tensor_checksum(tensors) != metadata.get("sha256"):
        raise ModelFileError(
            f"{path} failed its checksum: the file was modified or corrupted; "
            "copy it again from its source"
        )
    try:
        info = json.loads(metadata["info"])
    except (KeyError, json.JSONDecodeError) as error:
        raise ModelFileError(f"{path} has no readable 'info' metadata") from error
    return tensors, info
