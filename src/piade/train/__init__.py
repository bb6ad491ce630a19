"""Training: the paper's recipe (Table 1) on normal images, with checkpoints, resume and DDP.

:func:`fit` trains on a data set of normal images, holds out a fraction of them to calibrate the
anomaly score, and writes into its output directory:

* ``run.json`` — the resolved model and training settings and the data description;
* ``metrics.jsonl`` — one JSON line per epoch;
* ``checkpoint.pt`` — network + optimiser state, written atomically every N epochs and at the end;
* ``model.safetensors`` — the model file (see :mod:`piade.inference.modelfile`).

Multi-GPU / multi-node: run the same command under ``torchrun``; each process trains on its shard
of every epoch's permutation through :class:`torch.nn.parallel.DistributedDataParallel`.

Modules: :mod:`~piade.train.config` (what to train: :class:`TrainConfig`), :mod:`~piade.train.run`
(:func:`fit`: one run from images to run directory), :mod:`~piade.train.loop` (the epoch loop and
batch-norm statistics), :mod:`~piade.train.checkpoint` (the run directory, checkpoints, resume).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from piade.train.config import FitResult, TrainConfig

if TYPE_CHECKING:
    from piade.train.run import fit

__all__ = ["FitResult", "TrainConfig", "fit"]


def __getattr__(name: str) -> Any:
    """``fit`` is imported on first use: the settings above need no torch, ``fit`` all of it."""
    if name != "fit":
        raise AttributeError(f"module 'piade.train' has no attribute {name!r}")
    from piade.train.run import fit

    return fit
