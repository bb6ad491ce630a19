"""Tiny fake data sets in each native layout, written by the tests themselves."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def noise(rng: np.random.Generator, size: int, *, low: int = 0, high: int = 100) -> np.ndarray:
    """Dark random RGB (size, size, 3) uint8."""
    return rng.integers(low, high, (size, size, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_cifar_pickle(
    folder: Path,
    train_labels: Sequence[int],
    test_labels: Sequence[int],
    *,
    seed: int = 0,
    meta: bool = True,
    protocol: int = pickle.HIGHEST_PROTOCOL,
) -> tuple[np.ndarray, np.ndarray]:
    """``data_batch_1..5`` (train_labels split in 5), ``test_batch``, ``batches.meta`` in folder.

    Returns the (train, test) data arrays (N, 3072) uint8 as written.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train = rng.integers(0, 256, (len(train_labels), 3072), dtype=np.uint8)
    test = rng.integers(0, 256, (len(test_labels), 3072), dtype=np.uint8)
    chunks = np.array_split(np.arange(len(train_labels)), 5)
    for i, rows in enumerate(chunks, start=1):
        batch = {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"data": train[rows],
            b"labels": [int(train_labels[r]) for r in rows],
            b"filenames": [f"img_{r}.png".encode() for r in rows],
        }
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch, protocol=protocol))
    batch = {
        b"batch_label": b"testing batch 1 of 1",
        b"data": test,
        b"labels": [int(x) for x in test_labels],
    }
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
    if meta:
        names = {b"label_names": [n.encode() for n in CIFAR_NAMES], b"num_vis": 3072}
        (folder / "batches.meta").write_bytes(pickle.dumps(names, protocol=protocol))
    return train, test


def write_class_folders(root: Path, counts: dict[str, tuple[int, int]], *, size: int = 8) -> Path:
    """``train/<class>/`` and ``test/<class>/`` with (n_train, n_test) JPEGs per class."""
    rng = np.random.default_rng(0)
    for name, (n_train, n_test) in counts.items():
        for split, n in (("train", n_train), ("test", n_test)):
            for i in range(n):
                save(root / split / name / f"{i:04d}.jpg", noise(rng, size))
    return root


def write_coil(
    folder: Path, n_objects: int, n_poses: int, *, size: int = 8, grey: bool = True
) -> Path:
    """``objN__A.png`` for N = 1..n_objects, A = 0..n_poses-1; object N has brightness ~ 20 N."""
    rng = np.random.default_rng(0)
    for obj in range(1, n_objects + 1):
        for pose in range(n_poses):
            image = np.full((size, size, 3), 20 * obj, dtype=np.uint8) + noise(rng, size, high=5)
            save(folder / f"obj{obj}__{pose}.png", image[..., 0] if grey else image)
    return folder


def square_pair(
    size: int,
    box: tuple[int, int, int, int],
    *,
    grey: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A dark image with a white square at ``box`` (top, left, bottom, right) and its mask."""
    top, left, bottom, right = box
    image = np.full((size, size, 3), 10, dtype=np.uint8)
    image[top:bottom, left:right] = 250
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top:bottom, left:right] = 255
    return (image[..., 0] if grey else image), mask


def write_mvtec(
    root: Path,
    category: str = "widget",
    *,
    n_train: int = 5,
    n_good: int = 2,
    defects: dict[str, int] | None = None,
    size: int = 32,
    grey: bool = False,
    box: tuple[int, int, int, int] = (8, 8, 16, 16),
) -> Path:
    """An MVTec AD category under ``root``; defect images hold a white square at ``box``."""
    rng = np.random.default_rng(0)
    base = root / category
    for i in range(n_train):
        image = noise(rng, size)
        save(base / "train" / "good" / f"{i:03d}.png", image[..., 0] if grey else image)
    for i in range(n_good):
        image = noise(rng, size)
        save(base / "test" / "good" / f"{i:03d}.png", image[..., 0] if grey else image)
    for defect, n in (defects or {"scratch": 3}).items():
        for i in range(n):
            image, mask = square_pair(size, box, grey=grey)
            save(base / "test" / defect / f"{i:03d}.png", image)
            save(base / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return base


def write_folder(
    root: Path,
    *,
    n_normal: int = 10,
    n_abnormal: int = 3,
    size: int = 16,
    mask_names: str = "suffix",
) -> Path:
    """``good/``, ``bad/`` and ``masks/`` (mask stems ``<stem>_mask`` or ``<stem>``)."""
    rng = np.random.default_rng(0)
    for i in range(n_normal):
        save(root / "good" / f"n{i}.png", noise(rng, size))
    for i in range(n_abnormal):
        image, mask = square_pair(size, (2, 2, 6, 6))
        save(root / "bad" / f"a{i}.png", image)
        stem = f"a{i}_mask" if mask_names == "suffix" else f"a{i}"
        save(root / "masks" / f"{stem}.png", mask)
    return root
