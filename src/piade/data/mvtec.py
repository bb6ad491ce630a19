"""MVTec AD: ``<category>/train/good``, ``<category>/test/<defect>``,
``<category>/ground_truth/<defect>/<stem>_mask.png``.

The split is the published one: train = ``train/good``; test = every image under ``test/``, label 0
for ``good`` and 1 for any other folder. Every defect image must have its mask; a missing one is an
error naming the image and the path where its mask was expected. A category with no
``ground_truth/`` folder at all (as some copies ship, and as most users' own labelled data come)
loads with image labels only, and one :class:`DataWarning` says that pixel metrics are skipped. Grey categories (grid, screw,
zipper) are repeated to three channels when decoded.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from piade.data.common import (
    ANOMALOUS,
    NORMAL,
    Sample,
    as_path,
    describe_choices,
    list_images,
    require_dir,
    subfolders,
)
from piade.errors import DataError, DataWarning

MVTEC_CATEGORIES = (
    "bottle",
    "cable",
    "capsule",
    "carpet",
    "grid",
    "hazelnut",
    "leather",
    "metal_nut",
    "pill",
    "screw",
    "tile",
    "toothbrush",
    "transistor",
    "wood",
    "zipper",
)
GOOD = "good"
_LAYOUT = "<category>/train/good, <category>/test/<defect>, <category>/ground_truth/<defect>"


def is_category(folder: Path) -> bool:
    """Whether ``folder`` looks like an MVTec AD category (has ``train/`` and ``test/``)."""
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def resolve_category(root: str | os.PathLike[str] | None, target: str | None) -> Path:
    """The category folder: ``root`` itself when it is one, else ``root/target``.

    Raises DataError listing the categories found under ``root`` when ``target`` is not one.
    """
    path = as_path(root, "MVTec AD root")
    if is_category(path) and (target is None or str(target) == path.name):
        return path
    found = [d.name for d in subfolders(path) if is_category(d)]
    if target is not None and str(target) in found:
        return path / str(target)
    if not found and not is_category(path):
        raise DataError(
            f"{path} is not an MVTec AD folder: expected {_LAYOUT} (pass the data set "
            "root with a category, or a category folder)"
        )
    if target is None:
        raise DataError(
            f"no MVTec AD category given for {path}; categories found: {describe_choices(found)}"
        )
    raise DataError(
        f"unknown MVTec AD category {target!r} in {path}; categories found: "
        f"{describe_choices(found or [path.name])}"
    )


def index_mvtec(category: Path) -> tuple[list[Sample], list[Sample]]:
    """(train, test) samples of one category folder, with labels and masks."""
    train_dir = require_dir(category / "train" / GOOD, f"MVTec AD layout {_LAYOUT}")
    train = [Sample(str(f), NORMAL, None, GOOD) for f in list_images(train_dir)]
    test: list[Sample] = []
    test_dir = category / "test"
    defects = subfolders(test_dir)
    if not defects:
        raise DataError(
            f"no folders in {test_dir}; expected test/good and one folder per defect "
            f"type ({_LAYOUT})"
        )
    with_masks = (category / "ground_truth").is_dir()
    if not with_masks and any(folder.name != GOOD for folder in defects):
        warnings.warn(
            f"{category} has no ground_truth/ folder: defect images are used with their labels"
            " only, and pixel metrics (pixel AUROC, AUPRO) are skipped",
            DataWarning,
            stacklevel=2,
        )
    for folder in defects:
        for file in list_images(folder):
            if folder.name == GOOD:
                test.append(Sample(str(file), NORMAL, None, GOOD))
            else:
                mask = _mask_of(category, folder.name, file) if with_masks else None
                test.append(Sample(str(file), ANOMALOUS, str(mask) if mask else None, folder.name))
    return train, test


def _mask_of(category: Path, defect: str, image: Path) -> Path:
    mask = category / "ground_truth" / defect / f"{image.stem}_mask.png"
    if not mask.is_file():
        raise DataError(
            f"defect image {image} has no mask: expected {mask}. Add the mask (white = "
            "defect), or move the image out of test/ if it has none"
        )
    return mask
