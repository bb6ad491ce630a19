"""The public entry point: :func:`build_datasets` (and :func:`build_index`, its decoding-free half)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from piade.data.cifar10 import index_cifar10
from piade.data.coil import index_coil
from piade.data.common import Sample, count_labels
from piade.data.dataset import ImageDataset
from piade.data.decode import read_rgb
from piade.data.folder import index_folder
from piade.data.loading import LoadOptions, PixelReader, load_samples
from piade.data.mvtec import index_mvtec, resolve_category
from piade.data.protocols import coil_split, folder_split, one_vs_rest
from piade.errors import ConfigError

DATASETS = ("cifar10", "coil100", "mvtec", "folder")
LOAD_OPTIONS = ("center_crop", "cache_dir", "workers", "on_error")
FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    "cifar10": (),
    "coil100": ("train_fraction",),
    "mvtec": (),
    "folder": ("normal_dir", "abnormal_dir", "mask_dir", "normal_test_dir", "normal_split"),
}

Root = str | os.PathLike[str] | None


@dataclass(frozen=True)
class SplitIndex:
    """The train and test samples of a protocol, before decoding.

    Attributes:
        description: e.g. ``"mvtec bottle"``, for logs and reports.
        train, test: the samples, labels set by the protocol.
        read: returns the RGB pixels of a sample's ``source``.
    """

    description: str
    train: tuple[Sample, ...]
    test: tuple[Sample, ...]
    read: PixelReader = read_rgb

    def __str__(self) -> str:
        normal, anomalous = count_labels(self.test)
        masks = sum(s.mask is not None for s in self.test)
        return (
            f"{self.description}: {len(self.train)} train, {len(self.test)} test "
            f"({normal} normal, {anomalous} anomalous, {masks} masks)"
        )


def build_index(name: str, root: Root, target: Any, *, seed: int = 0, **options: Any) -> SplitIndex:
    """Index data set ``name`` at ``root`` and apply its protocol, without decoding any image.

    Takes the arguments of :func:`build_datasets` except the decoding options.
    """
    _check_options(name, options, FORMAT_OPTIONS.get(name, ()))
    if name == "cifar10":
        cifar = index_cifar10(root)
        train, test = one_vs_rest(cifar, target)
        return SplitIndex(f"cifar10 {train[0].group}", tuple(train), tuple(test), cifar.read)
    if name == "coil100":
        coil = index_coil(root)
        train, test = coil_split(coil, target, seed=seed, **options)
        return SplitIndex(f"coil {train[0].group}", tuple(train), tuple(test))
    if name == "mvtec":
        category = resolve_category(root, None if target is None else str(target))
        train, test = index_mvtec(category)
        return SplitIndex(f"mvtec {category.name}", tuple(train), tuple(test))
    normal_split = options.pop("normal_split", None)
    if options.get("normal_dir") is None:
        options["normal_dir"] = target
    folder = index_folder(root, **options)
    split = {} if normal_split is None else {"normal_split": normal_split}
    train, test = folder_split(folder, seed=seed, **split)
    return SplitIndex(f"folder {Path(str(options['normal_dir'])).name}", tuple(train), tuple(test))


def build_datasets(
    name: str,
    root: Root,
    target: Any,
    *,
    image_size: int,
    seed: int = 0,
    before_decoding: Callable[[], None] | None = None,
    **options: Any,
) -> tuple[ImageDataset, ImageDataset]:
    """The (train, test) data sets of ``name`` at ``root`` under the paper's protocol.

    Args:
        name: "cifar10", "coil100" (also COIL-20), "mvtec" or "folder".
        root: the data set's folder (for "folder" it may be None; relative folders are then taken
            from the working directory).
        target: the normal class: a CIFAR-10 class index or name; a COIL object id; an MVTec AD
            category (None when ``root`` is a category folder); for "folder", the normal folder
            when ``normal_dir`` is not given, else None.
        image_size: side of the square images, in pixels.
        seed: seeds the COIL and folder splits.
        before_decoding: called once the images are found and before any is decoded (``piade
            fit`` checks its weights files there, so neither a data error nor a missing file
            waits for the decoding).
        **options: ``center_crop`` (the central share of each side kept before resizing; 1, the
            default, keeps the whole image), ``cache_dir`` (disk cache folder), ``workers``
            (decoding threads), ``on_error`` ("raise" or "skip" unreadable files); COIL:
            ``train_fraction`` (0.8); folder: ``normal_dir``, ``abnormal_dir``, ``mask_dir``,
            ``normal_test_dir``, ``normal_split`` (0.2, used without ``normal_test_dir``).

    Returns:
        Two :class:`ImageDataset`: items ``image`` float32 (3, S, S) in [0, 1], ``label`` 0/1,
        ``mask`` float32 (1, S, S), ``path``; attributes ``samples``, ``labels``, ``images``,
        ``masks``.

    Raises:
        DataError: a missing root or folder, a wrong layout, an unknown class, object or category,
            no images, an unreadable file (unless skipped), a defect image without its mask, or a
            mask of the wrong size.
        ConfigError: an unknown ``name`` or option, or an invalid option value.
    """
    index, load_options = _index(name, root, target, image_size, seed, options)
    if before_decoding is not None:
        before_decoding()
    return _load(index, load_options, "train"), _load(index, load_options, "test")


def build_test_set(
    name: str, root: Root, target: Any, *, image_size: int, seed: int = 0, **options: Any
) -> ImageDataset:
    """The test set of :func:`build_datasets` alone: the training images are listed (the split
    needs them) but not decoded, which saves ``piade evaluate`` their decoding time."""
    index, load_options = _index(name, root, target, image_size, seed, options)
    return _load(index, load_options, "test")


def _index(
    name: str, root: Root, target: Any, image_size: int, seed: int, options: dict[str, Any]
) -> tuple[SplitIndex, LoadOptions]:
    load = {k: options.pop(k) for k in LOAD_OPTIONS if k in options}
    load_options = LoadOptions(image_size=image_size, **load)
    return build_index(name, root, target, seed=seed, **options), load_options


def _load(index: Any, options: LoadOptions, split: str) -> ImageDataset:
    description = f"{index.description} {split} images"
    return load_samples(getattr(index, split), options, read=index.read, description=description)


def _check_options(name: str, options: dict[str, Any], accepted: tuple[str, ...]) -> None:
    if name not in DATASETS:
        raise ConfigError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        valid = ", ".join((*LOAD_OPTIONS, *accepted))
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {name!r} data; valid: {valid}"
        )
