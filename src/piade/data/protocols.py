"""The train/test protocols of the paper's tables, as pure functions of a sample index.

* CIFAR-10 one-vs-rest (Table 2): train = every training image of class k; test = the full test
  split, label 1 for every class other than k.
* COIL (Table 4): per object, a seeded random ``train_fraction`` (80 %) of its images for training;
  test = the rest of them plus as many images drawn (seeded) from all the other objects.
* MVTec AD (Table 3): the published split, see :mod:`piade.data.mvtec`.
* Folder: normal images split by a seeded hold-out unless a normal test folder is given.

Randomness comes from ``numpy.random.default_rng`` seeded with ``(seed, object id)`` for COIL and
``seed`` for folders, so a split is reproducible from its seed alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from piade.data.cifar10 import Cifar10Index
from piade.data.coil import CoilIndex
from piade.data.common import ANOMALOUS, NORMAL, Sample
from piade.data.folder import FolderIndex
from piade.errors import ConfigError, DataError

COIL_TRAIN_FRACTION = 0.8  # paper Sec. 5: 80 % of each object's images for training
FOLDER_NORMAL_SPLIT = 0.2  # share of normal images held out for testing without normal_test_dir


def one_vs_rest(index: Cifar10Index, target: int | str) -> tuple[list[Sample], list[Sample]]:
    """CIFAR-10 train = class ``target``'s training images; test = the whole test split."""
    name = index.classes[index.class_index(target)]
    train = [replace(s, label=NORMAL) for s in index.train if s.group == name]
    test = [replace(s, label=NORMAL if s.group == name else ANOMALOUS) for s in index.test]
    if not test:
        raise DataError(f"the CIFAR-10 test split in {index.root} holds no images")
    return train, test


def coil_split(
    index: CoilIndex, target: int | str, *, seed: int, train_fraction: float = COIL_TRAIN_FRACTION
) -> tuple[list[Sample], list[Sample]]:
    """COIL train = a seeded ``train_fraction`` of object ``target``'s images; see module doc."""
    _check_fraction("train_fraction", train_fraction)
    obj = index.object_id(target)
    own = index.objects[obj]
    rng = np.random.default_rng((seed, obj))
    order = rng.permutation(len(own))
    n_train = round(train_fraction * len(own))
    if not 0 < n_train < len(own):
        raise DataError(
            f"object {obj} in {index.folder} has {len(own)} images: too few to keep "
            f"{train_fraction:.0%} for training and test on the rest"
        )
    train = [own[i] for i in sorted(order[:n_train])]
    normal_test = [own[i] for i in sorted(order[n_train:])]
    others = [s for other, samples in index.objects.items() if other != obj for s in samples]
    if len(others) < len(normal_test):
        raise DataError(
            f"{index.folder} holds {len(others)} images of other objects than {obj}; "
            f"the test needs {len(normal_test)} (add the other objects' images)"
        )
    drawn = sorted(rng.choice(len(others), size=len(normal_test), replace=False))
    anomalies = [replace(others[i], label=ANOMALOUS) for i in drawn]
    return train, normal_test + anomalies


def holdout_split(
    samples: Sequence[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """(kept, held out): a seeded random ``fraction`` of ``samples`` held out, order preserved."""
    n_out = round(fraction * len(samples))
    order = np.random.default_rng(seed).permutation(len(samples))
    out = set(order[:n_out].tolist())
    kept = [s for i, s in enumerate(samples) if i not in out]
    return kept, [s for i, s in enumerate(samples) if i in out]


def folder_split(
    index: FolderIndex, *, seed: int, normal_split: float = FOLDER_NORMAL_SPLIT
) -> tuple[list[Sample], list[Sample]]:
    """Folder train = normal images (less a seeded hold-out without normal_test_dir); test = rest."""
    if index.normal_test:
        train, normal_test = list(index.normal), list(index.normal_test)
    else:
        _check_fraction("normal_split", normal_split, allow_zero=True)
        train, normal_test = holdout_split(index.normal, normal_split, seed)
        if not train:
            raise DataError(
                f"normal_split={normal_split} leaves none of the {len(index.normal)} "
                "normal images for training; lower it or add normal_test_dir"
            )
    return train, normal_test + list(index.abnormal)


def _check_fraction(name: str, value: float, *, allow_zero: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value < 1):
        bound = "0 <=" if allow_zero else "0 <"
        raise ConfigError(f"{name} must be a number with {bound} {name} < 1; got {value!r}")
