"""Anomaly maps as pictures: the 'inferno' colours over the image or alone, written by threads.

Maps are written by a pool of threads while the next batch is scored (Pillow and zlib release the
GIL while they encode). PNGs use zlib level 1: on a 900 x 900 px bottle overlay that wrote 3-5x
faster than Pillow's default level 6 and 29 % larger (404 against 313 kB); JPEGs (``--map-format
jpg``) are about 20x cheaper again (docs/performance.md).
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

PNG_LEVEL = 1  # zlib level of the map PNGs: 3-5x faster to write than the default 6, ~30 % larger
JPEG_QUALITY = 90  # of --map-format jpg: ~20x faster to write than a level-1 PNG overlay


@functools.cache
def _palette() -> list[int]:
    """The 'inferno' colours as a flat 256 x RGB palette (matplotlib is imported only for this)."""
    from matplotlib import colormaps

    table = colormaps["inferno"](np.linspace(0, 1, 256))[:, :3] * 255
    return [int(v) for v in table.round().astype(np.uint8).ravel()]


def map_image(anomaly_map: np.ndarray, image: np.ndarray | None, scale: float) -> Image.Image:
    """The map in the 'inferno' colours, blended half and half with ``image`` unless it is None.

    The colour scale runs from 0 to ``scale`` (twice the 99th percentile of the map on held-out
    normal images), so maps of different images are comparable.
    """
    level = np.clip(anomaly_map / max(scale, 1e-12), 0, 1)
    heat = Image.fromarray((level * 255).round().astype(np.uint8), mode="L")
    heat.putpalette(_palette())  # "L" with a palette is read as "P": one table look-up per pixel
    heat = heat.convert("RGB")
    return heat if image is None else Image.blend(Image.fromarray(image), heat, 0.5)


def save_map(path: Path, anomaly_map: np.ndarray, image: np.ndarray | None, scale: float) -> None:
    """Write :func:`map_image` as a PNG (level :data:`PNG_LEVEL`) or, for a ``.jpg`` path, a JPEG
    (quality :data:`JPEG_QUALITY`)."""
    picture = map_image(anomaly_map, image, scale)
    if path.suffix == ".jpg":
        picture.save(path, format="JPEG", quality=JPEG_QUALITY)
    else:
        picture.save(path, format="PNG", compress_level=PNG_LEVEL)


class MapWriter:
    """Writes map files (PNG or JPEG) on a few threads, at most two batches behind the scoring; the first error
    (a full disk, say) is raised in the caller's thread."""

    def __init__(self, folder: Path | None, style: str, scale: float, suffix: str) -> None:
        self.folder, self.style, self.scale, self.suffix = folder, style, scale, suffix
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)))
        self.batches: list[list[Future[None]]] = [[]]

    def submit(self, stem: str, anomaly_map: np.ndarray, image: np.ndarray) -> str:
        """Queue one map for writing as ``stem`` in the folder; returns its path."""
        assert self.folder is not None, "no maps folder: maps='none' submits nothing"
        path = self.folder / f"{stem}.{self.suffix}"
        overlay = image if self.style == "overlay" else None
        self.batches[-1].append(self.pool.submit(save_map, path, anomaly_map, overlay, self.scale))
        return str(path)

    def end_batch(self) -> None:
        """Wait for the files of all but the last batch, so memory stays bounded."""
        self.batches.append([])
        while len(self.batches) > 2:
            for future in self.batches.pop(0):
                future.result()

    def close(self) -> None:
        try:
            for future in (f for batch in self.batches for f in batch):
                future.result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
