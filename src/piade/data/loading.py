"""Decoding a list of samples once, in a thread pool, into an :class:`ImageDataset`.

Each image is decoded and resized exactly once and kept as uint8; PIL and torch release the GIL while
they work, so a thread pool uses the cores without the start-up cost of processes. With
``on_error="raise"`` (the default) the first unreadable file stops the load with a
:class:`~piade.errors.DataError` naming it; with ``on_error="skip"`` each such sample is left out
with a :class:`~piade.errors.DataWarning` naming the file.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from piade.data.cache import DiskCache
from piade.data.common import Sample
from piade.data.dataset import ImageDataset
from piade.data.decode import check_mask_size, read_mask, read_rgb, resize_image, resize_mask
from piade.errors import ConfigError, DataError, DataWarning

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")
MAX_WORKERS = 8

PixelReader = Callable[[str], np.ndarray]
"""Returns the RGB uint8 (H, W, 3) pixels of a sample's ``source``."""


@dataclass(frozen=True)
class LoadOptions:
    """How samples are decoded.

    Attributes:
        image_size: side of the square output images, in pixels.
        center_crop: the central share of each side kept before resizing (1: the whole image).
        cache_dir: folder of the optional disk cache (see :mod:`piade.data.cache`), or None.
        workers: decoding threads; None means ``min(8, number of CPUs)``.
        on_error: "raise" stops at the first unreadable file, "skip" leaves it out with a warning.
    """

    image_size: int
    center_crop: float = 1.0
    cache_dir: str | os.PathLike[str] | None = None
    workers: int | None = None
    on_error: str = "raise"

    def __post_init__(self) -> None:
        if (
            isinstance(self.image_size, bool)
            or not isinstance(self.image_size, int)
            or self.image_size < 1
        ):
            raise ConfigError(
                f"image_size must be a positive int (pixels); got {self.image_size!r}"
            )
        if (
            isinstance(self.center_crop, bool)
            or not isinstance(self.center_crop, (int, float))
            or not 0 < self.center_crop <= 1
        ):
            raise ConfigError(
                f"center_crop must be a share of each side, above 0 and at most 1; got"
                f" {self.center_crop!r}"
            )
        if self.on_error not in ON_ERROR:
            raise ConfigError(
                f"on_error must be one of {', '.join(ON_ERROR)}; got {self.on_error!r}"
            )
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise ConfigError(f"workers must be >= 1 or None; got {self.workers!r}")


def load_samples(
    samples: Sequence[Sample],
    options: LoadOptions,
    *,
    read: PixelReader = read_rgb,
    description: str = "images",
) -> ImageDataset:
    """Decode ``samples`` with ``read`` into an :class:`ImageDataset` of ``options.image_size`` px.

    Raises DataError for an unreadable image or mask, or a mask whose size differs from its image's
    (unless ``options.on_error == "skip"``), and when no sample is left.
    """
    size, crop = options.image_size, float(options.center_crop)
    if not samples:
        return ImageDataset(
            [], torch.empty((0, 3, size, size), dtype=torch.uint8), center_crop=crop
        )
    cache = DiskCache(options.cache_dir) if options.cache_dir is not None else None
    has_masks = any(s.mask is not None for s in samples)
    images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
    masks = torch.zeros((len(samples), 1, size, size), dtype=torch.uint8) if has_masks else None

    def work(row: int) -> DataError | None:
        try:
            images[row], mask = _decode(samples[row], size, crop, read, cache)
        except DataError as error:
            return error
        if masks is not None and mask is not None:
            masks[row] = mask
        return None

    tic = time.perf_counter()
    workers = options.workers or min(MAX_WORKERS, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="piade-decode") as pool:
        results = pool.map(work, range(len(samples)))
        keep = _collect(results, len(samples), options.on_error, description, pool)
    if not keep:
        raise DataError(
            f"no readable {description} left: all {len(samples)} were skipped; check "
            "the files named in the warnings"
        )
    cut = f" (central {crop:.3g} of each side)" if crop < 1 else ""
    log.info(
        "decoded %d %s at %d px%s in %.2f s",
        len(keep), description, size, cut, time.perf_counter() - tic,
    )  # fmt: skip
    if len(keep) < len(samples):
        rows = torch.as_tensor(keep, dtype=torch.long)
        images = torch.index_select(images, 0, rows)
        masks = torch.index_select(masks, 0, rows) if masks is not None else None
    return ImageDataset([samples[i] for i in keep], images, masks, center_crop=crop)


def _collect(
    results: Iterator[DataError | None],
    total: int,
    on_error: str,
    description: str,
    pool: ThreadPoolExecutor,
) -> list[int]:
    """Indices of the samples that loaded; raises or warns for the others."""
    keep: list[int] = []
    progress = tqdm(
        results, total=total, desc=f"decoding {description}", unit="img", disable=None, leave=False
    )
    with progress:
        for row, error in enumerate(progress):
            if error is None:
                keep.append(row)
            elif on_error == "raise":
                pool.shutdown(wait=True, cancel_futures=True)
                raise error
            else:
                warnings.warn(f"skipping: {error}", DataWarning, stacklevel=3)
    return keep


def _decode(
    sample: Sample, size: int, crop: float, read: PixelReader, cache: DiskCache | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 image (3, S, S) and mask (1, S, S) or None for one sample."""
    image_shape, mask_shape = (3, size, size), (1, size, size)

    def image() -> torch.Tensor:
        return resize_image(read(sample.source), size, crop)

    if cache is None:
        decoded = image()
    else:
        decoded = cache.fetch(sample.source, "image", size, image_shape, image, crop=crop)
    if sample.mask is None:
        return decoded, None
    mask_path = sample.mask
    check_mask_size(sample.source, mask_path)

    def mask() -> torch.Tensor:
        return resize_mask(read_mask(mask_path), size, crop)

    return decoded, mask() if cache is None else cache.fetch(
        mask_path, "mask", size, mask_shape, mask, crop=crop
    )
