"""The run directory: checkpoints written atomically and read without unpickling code, and resume.

A checkpoint is a ``torch.save`` of plain data (tensors, numbers, strings) written to a temporary
file in the same directory, flushed to disk, then renamed over the old one: a process killed
mid-write leaves the previous checkpoint intact, never a corrupt one. It is read back with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from piade.config import with_legacy_values
from piade.errors import ConfigError, PiadeError
from piade.train.config import CHECKPOINT, METRICS, RUN, with_legacy_train_values

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "piade-checkpoint-1"
# Settings that may change when a run is resumed; every other one must match the checkpoint.
RESUMABLE_CHANGES = (
    "epochs",
    "device",
    "precision",
    "checkpoint_every",
    "lr",
    "compile",
    "map_kind",  # these only shape what follows the last epoch (statistics, calibration)
    "score_kind",
    "precise_bn",
    "map_sigma",
)


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


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that processes killed while writing ``path`` left behind."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.tmp-*"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


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
    except pickle.UnpicklingError as error:  # weights_only refused an object: nothing was run
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and numbers (a pickle that could run "
            "code); it was not loaded. Use a checkpoint written by piade, or start the run again "
            "in a new --out folder"
        ) from error
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"cannot read checkpoint {path} ({type(error).__name__}: {first_line}); it may be "
            "truncated. Restore the file, or start the run again in a new --out folder"
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a piade checkpoint ({CHECKPOINT_FORMAT})")
    return state


def check_same_run(saved: dict[str, Any], run: dict[str, Any], out: Path) -> None:
    """CheckpointError listing the settings of ``run`` that differ from the checkpoint's ``saved``
    (other than :data:`RESUMABLE_CHANGES`)."""
    saved_model = with_legacy_values(saved["model"])
    saved_train = with_legacy_train_values(saved["train"])
    diffs = [f"model.{k}" for k in run["model"] if saved_model.get(k) != run["model"][k]]
    diffs += [
        f"train.{k}"
        for k in run["train"]
        if k not in RESUMABLE_CHANGES and saved_train.get(k) != run["train"][k]
    ]
    if diffs:
        raise CheckpointError(
            f"cannot resume {out}: settings differ from the checkpoint's "
            f"({', '.join(diffs)}); use the original settings or another --out"
        )


def truncate_metrics(path: Path, epochs_done: int) -> None:
    """Drop metric lines of epochs after the checkpoint (they will be trained again), and a line
    that a killed process left half-written."""
    if path.exists():
        lines = [line for line in path.read_text().splitlines() if _epoch_of(line) <= epochs_done]
        path.write_text("".join(line + "\n" for line in lines))


def _epoch_of(line: str) -> float:
    """The epoch of a metrics line; infinity for an empty or unreadable one (so it is dropped)."""
    try:
        return float(json.loads(line)["epoch"])
    except (ValueError, KeyError, TypeError):
        return float("inf")


def prepare_run(
    out: Path,
    run: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    resume: bool,
    is_main: bool,
) -> int:
    """Create the run directory or resume it; return the first epoch to train."""
    if not resume:
        if (out / RUN).exists() or (out / CHECKPOINT).exists():
            raise ConfigError(
                f"{out} already holds a piade run; continue it with --resume, or "
                "choose another --out directory"
            )
        if torch.distributed.is_initialized():
            torch.distributed.barrier()  # every process checked before the main one writes
        if is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / RUN).write_text(json.dumps(run, indent=2) + "\n")
        return 0
    state = load_checkpoint(out / CHECKPOINT)
    saved = json.loads(state["run"])
    check_same_run(saved, run, out)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:  # --lr may be lowered on resume (e.g. after a NaN)
        group["lr"] = run["train"]["lr"]
    if is_main:
        remove_stale_temporaries(out / CHECKPOINT)
        (out / RUN).write_text(json.dumps(run, indent=2) + "\n")
        truncate_metrics(out / METRICS, state["epoch"])
    log.info("resuming %s after epoch %d", out, state["epoch"])
    return int(state["epoch"])
