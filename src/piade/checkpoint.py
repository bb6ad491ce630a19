"""Training checkpoints: written atomically, read without unpickling code.

A checkpoint is a ``torch.save`` of plain data (tensors, numbers, strings) written to a temporary
file in the same directory, flushed to disk, then renamed over the old one: a process killed
mid-write leaves the previous checkpoint intact, never a corrupt one. It is read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from piade.errors import PiadeError

CHECKPOINT_FORMAT = "piade-checkpoint-1"


class CheckpointError(PiadeError, ValueError):
    """A checkpoint is missing, unreadable or from another run."""


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Atomically write ``state`` (plus the format tag) to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as handle:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: nothing to resume; start the run without --resume"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(error).__name__}: {error}); "
            "start again without --resume or restore the file"
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a piade checkpoint ({CHECKPOINT_FORMAT})")
    return state
