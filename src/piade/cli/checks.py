"""Checks the ``piade`` command line makes before any data is read, and the wording of
operating-system errors (a full disk, a folder without write permission) as one line."""

from __future__ import annotations

import argparse
import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

from piade.errors import ConfigError
from piade.train.config import RUN

if TYPE_CHECKING:
    import torch


OS_ERROR_FIXES = {
    errno.ENOSPC: "the disk is full: free some space and run the command again "
    "('piade fit --resume --out DIR' continues a training run from its last checkpoint)",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run the command again",
    errno.EACCES: "no permission: choose a folder you can write to, or change its permissions",
    errno.EPERM: "not permitted: choose a folder you can write to, or change its permissions",
    errno.EROFS: "the file system is read-only: choose a folder on a writable disk",
    errno.ENOTDIR: "a path component is a file, not a folder: check the path",
    errno.ELOOP: "a symbolic link loops: remove or fix the link",
}


def describe_os_error(error: OSError) -> str:
    """One line for an operating-system error: the file, what went wrong, what to do."""
    where = f" ({error.filename})" if error.filename is not None else ""
    what = error.strerror or str(error) or type(error).__name__
    fix = OS_ERROR_FIXES.get(error.errno or 0, "check the path and the disk, then try again")
    return f"{what}{where}; {fix}"


def preflight(args: argparse.Namespace) -> None:
    """Check ``--device`` and ``--out`` before any data is read (one clear error, no wasted work)."""
    device = getattr(args, "device", None)
    if runs_onnx(args):
        _check_onnx_flags(args)
    elif isinstance(device, str):
        from piade.runtime import resolve_device

        _check_device(resolve_device(device), device)
    out = getattr(args, "out", None)
    if isinstance(out, Path):
        if args.verb == "export":
            if out.is_dir():
                raise ConfigError(
                    f"--out {out} is a folder; pass the file to write, e.g. model.onnx"
                )
            check_writable(out.parent, flag="--out")
        elif args.verb in ("fit", "evaluate", "predict", "demo", "benchmark"):
            check_writable(out, flag="--out")
        if args.verb == "fit" and not args.resume and (out / RUN).exists():
            raise ConfigError(
                f"{out} already holds a piade run ({RUN}); continue it with --resume, or "
                "choose another --out directory"
            )


def runs_onnx(args: argparse.Namespace) -> bool:
    """Whether the verb runs an exported ONNX file (``piade predict`` or ``serve model.onnx``):
    no torch."""
    from piade.inference.portable import is_onnx_path

    return args.verb in ("predict", "serve") and is_onnx_path(args.model)


def _check_onnx_flags(args: argparse.Namespace) -> None:
    """An ONNX file runs with ONNX Runtime on the CPU, in float32: refuse flags it cannot honour."""
    if args.device not in ("auto", "cpu"):
        raise ConfigError(
            f"--device {args.device}: a .onnx model runs with ONNX Runtime on the CPU; leave "
            "--device out, or pass the model file (model.safetensors) to run it with PyTorch"
        )
    torch_only = (
        ("--precision bf16", args.precision != "fp32"),
        ("--compile", getattr(args, "compile", False)),
    )
    for flag, used in torch_only:
        if used:
            raise ConfigError(
                f"{flag} applies to PyTorch: a .onnx model runs with ONNX Runtime in float32; "
                f"leave {flag} out, or pass the model file (model.safetensors) instead"
            )


def _check_device(device: torch.device, spec: str) -> None:
    """``cuda:N`` must name a device this machine has (``resolve_device`` checks the rest)."""
    import torch

    if device.type != "cuda" or device.index is None:
        return
    count = torch.cuda.device_count()
    if device.index >= count:
        raise ConfigError(
            f"--device {spec}: this machine has {count} CUDA device(s) "
            f"(cuda:0 to cuda:{count - 1}); use one of them, or --device cpu"
        )


def check_writable(folder: Path, *, flag: str) -> None:
    """ConfigError unless ``folder`` can be written to, or created and then written to.

    A probe file is written (then deleted) in ``folder`` or, when it does not exist yet, in its
    nearest existing parent: nothing is created here, so a command refused later for another
    reason leaves no empty folder behind. The verb creates ``folder`` when it writes its first file.
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{flag} {folder} is a file, expected a folder; choose another {flag}")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"{flag} {folder} cannot be created: {existing} is a file; choose another {flag}"
        )
    probe = existing / f".piade-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"{flag} {folder} cannot be written ({error.strerror or error}); choose a "
            "folder you can write to, or change its permissions"
        ) from error
