"""COIL-100 and COIL-20: one flat folder of ``objN__A.png`` files (N = object id from 1, A = pose).

COIL-100 names the pose by its angle (``obj1__355.png``), COIL-20 by its index (``obj1__71.png``);
both sort numerically. COIL-20's grey images are repeated to three channels when decoded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from piade.data.common import Sample, as_path, is_image_file, subfolders
from piade.errors import DataError

COIL_NAME = re.compile(r"^obj(\d+)__(\d+)\.[A-Za-z]+$")
_EXPECTED = "files named objN__A.png (COIL-100 / COIL-20: N = object id, A = pose)"


@dataclass(frozen=True)
class CoilIndex:
    """The COIL images of a folder by object id, each sorted by pose; ``group`` is ``"objN"``."""

    folder: Path
    objects: dict[int, tuple[Sample, ...]]

    def object_id(self, target: int | str) -> int:
        """``target`` as a known object id; DataError listing the valid ids otherwise."""
        text = str(target).strip()
        if not isinstance(target, bool) and text.isdigit() and int(text) in self.objects:
            return int(text)
        raise DataError(
            f"unknown COIL object id {target!r} in {self.folder}; valid ids: "
            f"{id_ranges(sorted(self.objects))}"
        )


def index_coil(root: str | os.PathLike[str] | None) -> CoilIndex:
    """Index the COIL images in ``root``, or in the one sub-folder of ``root`` that holds them."""
    path = as_path(root, "COIL root")
    found = _coil_files(path)
    if not found:
        candidates = [(d, files) for d in subfolders(path) if (files := _coil_files(d))]
        if len(candidates) > 1:
            names = ", ".join(str(d) for d, _ in candidates)
            raise DataError(
                f"{path} has several folders of COIL images ({names}); pass one of them as the root"
            )
        if not candidates:
            raise DataError(f"no COIL images in {path} or its sub-folders: expected {_EXPECTED}")
        path, found = candidates[0]
    objects: dict[int, list[tuple[int, Sample]]] = {}
    for file, (obj, pose) in found.items():
        objects.setdefault(obj, []).append((pose, Sample(str(file), group=f"obj{obj}")))
    return CoilIndex(
        path,
        {
            obj: tuple(s for _, s in sorted(items, key=lambda item: (item[0], item[1].source)))
            for obj, items in sorted(objects.items())
        },
    )


def _coil_files(folder: Path) -> dict[Path, tuple[int, int]]:
    """The COIL image files directly in ``folder`` with their (object id, pose)."""
    found: dict[Path, tuple[int, int]] = {}
    for file in folder.iterdir():
        match = COIL_NAME.match(file.name)
        if match and is_image_file(file):
            found[file] = (int(match.group(1)), int(match.group(2)))
    return found


def id_ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) or "none"
