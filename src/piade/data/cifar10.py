"""CIFAR-10: the official python-pickle batches (``cifar-10-batches-py``) or one folder per class.

The pickle batches are read with an unpickler that only admits what a CIFAR-10 batch holds (dicts,
lists, bytes, numbers and NumPy arrays), so a tampered file cannot run code. Their images are
addressed as ``"cifar10:<split>:<row>"``; class folders give one file per sample.
"""

from __future__ import annotations

import codecs
import importlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from piade.data.common import Sample, as_path, list_images, require_dir, subfolders
from piade.data.decode import read_rgb
from piade.errors import DataError

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
PICKLE_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
SIDE = 32
_LAYOUT = (
    f"expected either the official python version ({PICKLE_FOLDER}/ with "
    f"{', '.join(TRAIN_BATCHES)}, {TEST_BATCH}) or class folders train/<class>/ and "
    "test/<class>/"
)


@dataclass(frozen=True)
class Cifar10Index:
    """All CIFAR-10 samples of a root; ``group`` is the class name, labels are left at 0.

    Attributes:
        root: the folder the samples were found in.
        classes: class names by index.
        train, test: the samples of each split.
        read: returns the RGB pixels of a sample's source.
    """

    root: Path
    classes: tuple[str, ...]
    train: tuple[Sample, ...]
    test: tuple[Sample, ...]
    read: Callable[[str], np.ndarray]

    def class_index(self, target: int | str) -> int:
        """The index of class ``target`` (an index or a name); DataError listing valid ones."""
        present = {s.group for s in self.train}
        if isinstance(target, str) and target.strip().isdigit():
            target = int(target)
        if isinstance(target, int) and not isinstance(target, bool):
            if 0 <= target < len(self.classes) and self.classes[target] in present:
                return target
        elif isinstance(target, str) and target in present:
            return self.classes.index(target)
        valid = ", ".join(f"{i} {name}" for i, name in enumerate(self.classes) if name in present)
        raise DataError(
            f"unknown CIFAR-10 class {target!r} for {self.root}; valid classes (index "
            f"or name): {valid}"
        )


def index_cifar10(root: str | os.PathLike[str] | None) -> Cifar10Index:
    """Index the CIFAR-10 data set at ``root`` (the pickle folder, its parent, or class folders)."""
    path = as_path(root, "CIFAR-10 root")
    for folder in (path / PICKLE_FOLDER, path):
        if (folder / TEST_BATCH).is_file() or (folder / TRAIN_BATCHES[0]).is_file():
            return _index_pickle(folder)
    if (path / "train").is_dir() and (path / "test").is_dir():
        return _index_folders(path)
    hint = ""
    if (path / "cifar-10-python.tar.gz").is_file():
        hint = f" (extract {path / 'cifar-10-python.tar.gz'} there first: tar xzf)"
    raise DataError(f"{path} is not a CIFAR-10 folder: {_LAYOUT}{hint}")


def _index_folders(root: Path) -> Cifar10Index:
    splits = {
        split: subfolders(require_dir(root / split, "one folder per class"))
        for split in ("train", "test")
    }
    names = {d.name for dirs in splits.values() for d in dirs}
    if not splits["train"]:
        raise DataError(f"no class folders in {root / 'train'}; {_LAYOUT}")
    classes = CIFAR10_CLASSES if names <= set(CIFAR10_CLASSES) else tuple(sorted(names))
    samples = {
        split: tuple(Sample(str(f), group=d.name) for d in dirs for f in list_images(d))
        for split, dirs in splits.items()
    }
    return Cifar10Index(root, classes, samples["train"], samples["test"], read_rgb)


def _index_pickle(folder: Path) -> Cifar10Index:
    classes = _read_meta(folder / META_FILE)
    arrays: dict[str, np.ndarray] = {}
    samples: dict[str, tuple[Sample, ...]] = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))):
        parts = [_read_batch(folder / name, len(classes)) for name in names]
        arrays[split] = np.concatenate([data for data, _ in parts])  # (N, 3, 32, 32)
        labels = np.concatenate([lab for _, lab in parts])  # (N,)
        samples[split] = tuple(
            Sample(f"cifar10:{split}:{row}", group=classes[label])
            for row, label in enumerate(labels)
        )
    return Cifar10Index(folder, classes, samples["train"], samples["test"], _PickleImages(arrays))


class _PickleImages:
    """Pixels of ``"cifar10:<split>:<row>"`` sources from the batches held in memory."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays  # split -> (N, 3, 32, 32) uint8

    def __call__(self, source: str) -> np.ndarray:
        _, split, row = source.split(":")
        return self.arrays[split][int(row)].transpose(1, 2, 0)  # (32, 32, 3)


def _read_meta(path: Path) -> tuple[str, ...]:
    """Class names from ``batches.meta``; the standard names when the file is absent."""
    if not path.is_file():
        return CIFAR10_CLASSES
    names = _unpickle(path).get("label_names")
    if not isinstance(names, list) or not names:
        raise DataError(
            f"{path} has no 'label_names' list; expected the CIFAR-10 meta file "
            "(re-extract it, or delete it to use the standard class names)"
        )
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of one pickle batch."""
    if not path.is_file():
        raise DataError(
            f"CIFAR-10 batch {path} is missing; {_LAYOUT}. Re-extract cifar-10-python.tar.gz"
        )
    batch = _unpickle(path)
    data, labels = np.asarray(batch.get("data")), np.asarray(batch.get("labels"))
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * SIDE * SIDE
        or labels.shape != (len(data),)
    ):
        raise DataError(
            f"{path} is not a CIFAR-10 batch: expected 'data' uint8 (N, 3072) and N "
            f"'labels'; got data {data.dtype} {data.shape}, labels {labels.shape}"
        )
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{path} has labels outside 0..{n_classes - 1}; the batch does not match batches.meta"
        )
    return data.reshape(-1, 3, SIDE, SIDE), labels  # row-major R, G, B planes


def _unpickle(path: Path) -> dict[str, Any]:
    """A CIFAR-10 pickle as a dict with str keys, read with :class:`_BatchUnpickler`."""
    try:
        with path.open("rb") as handle:
            raw = _BatchUnpickler(handle, encoding="latin1").load()
    except (
        OSError,
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
    ) as error:
        raise DataError(
            f"cannot read CIFAR-10 file {path}: {error}; re-extract cifar-10-python.tar.gz"
        ) from error
    if not isinstance(raw, dict):
        raise DataError(f"{path} holds a {type(raw).__name__}, expected a CIFAR-10 dict")
    return {k.decode() if isinstance(k, bytes) else str(k): v for k, v in raw.items()}


def _numpy_function(name: str, modules: tuple[str, ...]) -> object:
    """``name`` from the first of ``modules`` that has it (NumPy 2 moved ``core`` to ``_core``)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {name} in {', '.join(modules)}")


_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")
_NUMERIC = ("numpy._core.numeric", "numpy.core.numeric")


class _BatchUnpickler(pickle.Unpickler):
    """Admits only the globals a CIFAR-10 batch needs (NumPy array reconstruction, bytes)."""

    _allowed: ClassVar[dict[tuple[str, str], object]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
        **{(m, "_reconstruct"): _numpy_function("_reconstruct", _MULTIARRAY) for m in _MULTIARRAY},
        **{(m, "_frombuffer"): _numpy_function("_frombuffer", _NUMERIC) for m in _NUMERIC},
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"global {module}.{name} is not allowed in a CIFAR-10 batch"
            ) from None
