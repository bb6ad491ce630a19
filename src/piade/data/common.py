"""The sample index shared by every reader: one :class:`Sample` per image, built before decoding.

Readers list files and check the layout; protocols pick the train and test samples and their labels;
:mod:`piade.data.loading` decodes the chosen samples once. Keeping the index separate from the pixels
means a layout error is reported before any image is read, and the split can be inspected cheaply.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from piade.errors import DataError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".webp"}
)

NORMAL = 0
ANOMALOUS = 1


@dataclass(frozen=True)
class Sample:
    """One image of a data set, before it is decoded.

    Attributes:
        source: the image file's path, or an id such as ``"cifar10:test:123"`` for images stored
            inside a container file (the CIFAR-10 pickle batches).
        label: 0 normal, 1 anomalous; set by the protocol (readers that do not know it use 0).
        mask: path of the ground-truth mask (white = anomalous pixel), or None.
        group: what the sample belongs to: a defect type ("good" for normal MVTec images), a class
            name, an object id ("obj7").
    """

    source: str
    label: int = NORMAL
    mask: str | None = None
    group: str = ""


def as_path(root: str | os.PathLike[str] | None, what: str) -> Path:
    """``root`` as a Path that must be an existing folder; DataError naming it otherwise."""
    if root is None:
        raise DataError(f"no {what} given; pass the folder that holds the data set")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{what} {path} does not exist; check the path (it is read, never created)")
    if not path.is_dir():
        raise DataError(
            f"{what} {path} is a file, expected a folder; pass the folder that holds it"
        )
    return path


def require_dir(path: Path, expected: str) -> Path:
    """``path`` if it is a folder; otherwise DataError saying which layout was ``expected``."""
    if not path.is_dir():
        raise DataError(
            f"expected the folder {path} ({expected}); it is missing. Check the root "
            "folder and the data set's layout"
        )
    return path


def is_image_file(path: Path) -> bool:
    """True for visible files with an image extension (hidden files such as ``._x.png`` are not).

    A symbolic link with an image extension that leads nowhere (dangling, or a loop) counts too, so
    that it is reported as unreadable (or skipped with a warning) instead of vanishing silently.
    """
    if path.suffix.lower() not in IMAGE_EXTENSIONS or path.name.startswith("."):
        return False
    return path.is_file() or (path.is_symlink() and not path.exists())


def list_images(folder: Path, *, required: bool = True) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name (natural order for numbers).

    Raises DataError when ``required`` and the folder holds no image.
    """
    files = sorted((p for p in folder.iterdir() if is_image_file(p)), key=natural_key)
    if required and not files:
        raise DataError(
            f"no images found in {folder}; expected files ending in "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}. Add images to it, or remove the empty folder"
        )
    return files


def natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``img2`` before ``img10``."""
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p)


def subfolders(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def describe_choices(values: Iterable[object]) -> str:
    """``"a, b, c"``, or ``"none"`` for an empty list."""
    text = ", ".join(str(v) for v in values)
    return text or "none"


def count_labels(samples: Iterable[Sample]) -> tuple[int, int]:
    """(normal, anomalous) counts."""
    labels = [s.label for s in samples]
    return labels.count(NORMAL), labels.count(ANOMALOUS)
