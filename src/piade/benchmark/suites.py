"""Benchmark suites: which classes a data set root holds, and each class's data under its protocol.

A *suite* is one of the data formats of :mod:`piade.data` with its paper protocol (DESIGN.md): one
model per CIFAR-10 class, per COIL object, per MVTec AD category, or a single model for a folder.
Classes are named as the tables print them: CIFAR-10 class names, ``objN`` for COIL objects, MVTec AD
category names, and the normal folder's name for folder data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from piade.data import ImageDataset, build_datasets
from piade.data.cifar10 import index_cifar10
from piade.data.coil import index_coil
from piade.data.common import as_path, describe_choices, subfolders
from piade.data.mvtec import MVTEC_CATEGORIES, is_category
from piade.errors import ConfigError, DataError

SUITES = ("cifar10", "coil100", "mvtec", "folder")
PAPER_IMAGE_SIZE = {"cifar10": 32, "coil100": 120, "mvtec": 120, "folder": 120}


def list_classes(suite: str, root: str | os.PathLike[str], **options: Any) -> list[str]:
    """Every class of ``suite`` found at ``root``, in the paper's order where it has one."""
    if suite == "cifar10":
        index = index_cifar10(root)
        present = {s.group for s in index.train}
        return [name for name in index.classes if name in present]
    if suite == "coil100":
        return [f"obj{obj}" for obj in index_coil(root).objects]
    if suite == "mvtec":
        path = as_path(root, "MVTec AD root")
        if is_category(path):
            return [path.name]
        found = [d.name for d in subfolders(path) if is_category(d)]
        if not found:
            raise DataError(
                f"{path} holds no MVTec AD category (folders with train/ and test/); pass the "
                "data set root"
            )
        order = {name: i for i, name in enumerate(MVTEC_CATEGORIES)}
        return sorted(found, key=lambda name: (order.get(name, len(order)), name))
    if suite == "folder":
        normal = options.get("normal_dir") or root
        return [Path(str(normal)).name]
    raise ConfigError(f"unknown benchmark suite {suite!r}; choose one of {', '.join(SUITES)}")


def select_classes(available: Sequence[str], wanted: Sequence[str] | None, suite: str) -> list[str]:
    """``wanted`` (names; also indices for CIFAR-10 and ids for COIL) checked against ``available``."""
    if not wanted:
        return list(available)
    chosen = []
    for item in wanted:
        name = _class_name(item, available, suite)
        if name is None:
            raise ConfigError(
                f"--classes: {item!r} is not a class of this {suite} root; found "
                f"{describe_choices(available)}"
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


def _class_name(item: str, available: Sequence[str], suite: str) -> str | None:
    text = str(item).strip()
    if text in available:
        return text
    if suite == "cifar10" and text.isdigit() and int(text) < len(available):
        return available[int(text)]
    if suite == "coil100" and f"obj{text}" in available:
        return f"obj{text}"
    return None


def load_class(
    suite: str,
    root: str | os.PathLike[str],
    cls: str,
    *,
    image_size: int,
    seed: int,
    **options: Any,
) -> tuple[ImageDataset, ImageDataset]:
    """The (train, test) data sets of class ``cls`` of ``suite`` at ``image_size`` px."""
    target: Any = cls
    if suite == "coil100":
        target = int(cls.removeprefix("obj"))
    elif suite == "folder":
        target = None if options.get("normal_dir") else root
    return build_datasets(suite, root, target, image_size=image_size, seed=seed, **options)
