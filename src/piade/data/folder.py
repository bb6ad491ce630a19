"""A plain folder of the user's own images (the idea of anomalib's ``Folder`` data set).

``normal_dir`` holds normal images; ``abnormal_dir`` (optional) anomalous test images;
``mask_dir`` (optional) their masks, matched by file stem with or without a ``_mask`` suffix
(``a.png`` -> ``a.png`` or ``a_mask.png``, any image extension); ``normal_test_dir`` (optional)
normal test images. Folders are read non-recursively. Relative folders are taken from ``root``
when it is given, else from the working directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from piade.data.common import ANOMALOUS, NORMAL, Sample, as_path, list_images
from piade.errors import DataError

MASK_SUFFIX = "_mask"


@dataclass(frozen=True)
class FolderIndex:
    """The samples of a folder data set before the normal images are split.

    Attributes:
        normal: images of ``normal_dir``.
        normal_test: images of ``normal_test_dir`` (empty when not given).
        abnormal: images of ``abnormal_dir`` with their masks (empty when not given).
    """

    normal: tuple[Sample, ...]
    normal_test: tuple[Sample, ...]
    abnormal: tuple[Sample, ...]


def index_folder(
    root: str | os.PathLike[str] | None,
    *,
    normal_dir: str | os.PathLike[str] | None,
    abnormal_dir: str | os.PathLike[str] | None = None,
    mask_dir: str | os.PathLike[str] | None = None,
    normal_test_dir: str | os.PathLike[str] | None = None,
) -> FolderIndex:
    """Index the folders; DataError when one is missing, empty, or a mask cannot be matched."""
    base = as_path(root, "folder root") if root is not None else None
    if normal_dir is None:
        raise DataError("folder data needs normal_dir, the folder of normal (good) images")
    normal = list_images(_folder(base, normal_dir, "normal_dir"))
    normal_test = (
        list_images(_folder(base, normal_test_dir, "normal_test_dir"))
        if normal_test_dir is not None
        else []
    )
    abnormal = (
        list_images(_folder(base, abnormal_dir, "abnormal_dir")) if abnormal_dir is not None else []
    )
    if mask_dir is not None and abnormal_dir is None:
        raise DataError(
            f"mask_dir {mask_dir} was given without abnormal_dir; masks belong to the "
            "abnormal images, so pass abnormal_dir too"
        )
    mask_folder = _folder(base, mask_dir, "mask_dir") if mask_dir is not None else None
    masks = _mask_table(mask_folder) if mask_folder is not None else None
    return FolderIndex(
        normal=tuple(Sample(str(f), NORMAL, None, "normal") for f in normal),
        normal_test=tuple(Sample(str(f), NORMAL, None, "normal") for f in normal_test),
        abnormal=tuple(
            Sample(str(f), ANOMALOUS, _match_mask(masks, f, mask_folder), "abnormal")
            for f in abnormal
        ),
    )


def _folder(base: Path | None, folder: str | os.PathLike[str], option: str) -> Path:
    path = Path(folder).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_dir():
        where = f" (relative to the root {base})" if base is not None else ""
        raise DataError(
            f"{option} {path} does not exist or is not a folder{where}; pass the "
            "folder that holds the images"
        )
    return path


def _mask_table(folder: Path) -> dict[str, Path]:
    """Mask files by stem (a stem may end in ``_mask``)."""
    return {f.stem: f for f in list_images(folder)}


def _match_mask(masks: dict[str, Path] | None, image: Path, mask_dir: Path | None) -> str | None:
    if masks is None:
        return None
    for stem in (image.stem, image.stem + MASK_SUFFIX):
        if stem in masks:
            return str(masks[stem])
    raise DataError(
        f"abnormal image {image} has no mask in {mask_dir}: expected a file named "
        f"{image.stem}.<ext> or {image.stem}{MASK_SUFFIX}.<ext>. Add it, or leave "
        "mask_dir out to evaluate without pixel metrics"
    )
