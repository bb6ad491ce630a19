"""Data sets: readers for CIFAR-10, COIL-100/20, MVTec AD and plain folders, and the paper's protocols.

Every reader first builds a flat index of :class:`Sample` (no image decoded), the protocol picks the
train and test samples, then each image is decoded and resized once and kept in memory as uint8.
The entry point is :func:`build_datasets`; see ``docs/data.md``.

This package imports nothing from piade outside ``piade.data`` except :mod:`piade.errors` (and
:mod:`piade.lazy`, which imports the names below on first use: reading image files needs no torch).
"""

from typing import TYPE_CHECKING

from piade.lazy import attributes

if TYPE_CHECKING:
    from piade.data.build import DATASETS, SplitIndex, build_datasets, build_index, build_test_set
    from piade.data.cifar10 import CIFAR10_CLASSES, index_cifar10
    from piade.data.coil import index_coil
    from piade.data.common import Sample
    from piade.data.dataset import ImageDataset
    from piade.data.folder import index_folder
    from piade.data.loading import LoadOptions, load_samples
    from piade.data.mvtec import MVTEC_CATEGORIES, index_mvtec, resolve_category
    from piade.errors import DataWarning

_HOMES = {  # public name -> the module it lives in (imported on first use: piade.lazy)
    "DATASETS": "piade.data.build",
    "SplitIndex": "piade.data.build",
    "build_datasets": "piade.data.build",
    "build_index": "piade.data.build",
    "build_test_set": "piade.data.build",
    "CIFAR10_CLASSES": "piade.data.cifar10",
    "index_cifar10": "piade.data.cifar10",
    "index_coil": "piade.data.coil",
    "Sample": "piade.data.common",
    "ImageDataset": "piade.data.dataset",
    "index_folder": "piade.data.folder",
    "LoadOptions": "piade.data.loading",
    "load_samples": "piade.data.loading",
    "MVTEC_CATEGORIES": "piade.data.mvtec",
    "index_mvtec": "piade.data.mvtec",
    "resolve_category": "piade.data.mvtec",
    "DataWarning": "piade.errors",
}

__all__ = [
    "CIFAR10_CLASSES",
    "DATASETS",
    "MVTEC_CATEGORIES",
    "DataWarning",
    "ImageDataset",
    "LoadOptions",
    "Sample",
    "SplitIndex",
    "build_datasets",
    "build_index",
    "build_test_set",
    "index_cifar10",
    "index_coil",
    "index_folder",
    "index_mvtec",
    "load_samples",
    "resolve_category",
]

__getattr__, __dir__ = attributes(__name__, _HOMES)
