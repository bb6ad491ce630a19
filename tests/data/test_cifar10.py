"""CIFAR-10 in its official pickle format and as class folders: one-vs-rest protocol."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data.writers import write_cifar_pickle, write_class_folders

from piade.data import CIFAR10_CLASSES, build_datasets, build_index, index_cifar10
from piade.errors import DataError

TRAIN_LABELS = [i % 10 for i in range(60)]  # 6 per class over 5 batches
TEST_LABELS = [(3 * i) % 10 for i in range(25)] + [3, 3]  # class 3: 5 images


@pytest.fixture
def pickled(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    train, test = write_cifar_pickle(tmp_path / "cifar-10-batches-py", TRAIN_LABELS, TEST_LABELS)
    return tmp_path, train, test


@pytest.mark.parametrize("inside", [False, True])
def test_pickle_one_vs_rest_counts_and_labels(pickled, inside: bool) -> None:
    root, _, _ = pickled
    index = build_index("cifar10", root / "cifar-10-batches-py" if inside else root, 3)
    assert len(index.train) == TRAIN_LABELS.count(3)
    assert all(s.label == 0 and s.group == "cat" for s in index.train)
    assert len(index.test) == len(TEST_LABELS)  # the FULL test split
    labels = [s.label for s in index.test]
    assert labels.count(0) == TEST_LABELS.count(3)
    assert labels == [int(c != 3) for c in TEST_LABELS]


def test_pickle_pixels_are_the_rgb_planes(pickled) -> None:
    root, train, test = pickled
    train_set, test_set = build_datasets("cifar10", root, "cat", image_size=32)
    rows = [i for i, c in enumerate(TRAIN_LABELS) if c == 3]
    assert torch.equal(train_set.images, torch.from_numpy(train[rows].reshape(-1, 3, 32, 32)))
    assert torch.equal(test_set.images, torch.from_numpy(test.reshape(-1, 3, 32, 32)))
    item = test_set[0]
    assert item["path"] == "cifar10:test:0"
    assert torch.equal((item["image"] * 255).round().to(torch.uint8), test_set.images[0])


def test_pickle_resized_and_target_forms(pickled) -> None:
    root, _, _ = pickled
    train_set, test_set = build_datasets("cifar10", root, "3", image_size=8)
    assert train_set.images.shape == (6, 3, 8, 8)
    assert test_set.labels == [int(c != 3) for c in TEST_LABELS]
    assert len(build_index("cifar10", root, 0).train) == 6


def test_py2_style_numpy_global_is_read(tmp_path: Path) -> None:
    """Batches written by Python 2 name ``numpy.core.multiarray`` (the real files do)."""
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_pickle(folder, TRAIN_LABELS, TEST_LABELS, protocol=2)
    for file in folder.iterdir():
        file.write_bytes(
            file.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        )
    assert len(build_index("cifar10", tmp_path, 1).test) == len(TEST_LABELS)


def test_pickle_without_meta_uses_standard_names(tmp_path: Path) -> None:
    write_cifar_pickle(tmp_path, TRAIN_LABELS, TEST_LABELS, meta=False)
    assert index_cifar10(tmp_path).classes == CIFAR10_CLASSES


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch pwned",))


def test_pickle_with_foreign_global_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_cifar_pickle(tmp_path, TRAIN_LABELS, TEST_LABELS)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": []}))
    with pytest.raises(DataError, match=r"test_batch.*not allowed"):
        build_index("cifar10", tmp_path, 0)
    assert not (tmp_path / "pwned").exists()


def test_missing_batch_is_named(pickled) -> None:
    root, _, _ = pickled
    (root / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError, match=r"data_batch_4 is missing"):
        build_index("cifar10", root, 0)


def test_bad_batch_content(tmp_path: Path) -> None:
    write_cifar_pickle(tmp_path, TRAIN_LABELS, TEST_LABELS)
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8)}))
    with pytest.raises(DataError, match=r"test_batch is not a CIFAR-10 batch"):
        build_index("cifar10", tmp_path, 0)


def test_unknown_class_lists_valid_ones(pickled) -> None:
    root, _, _ = pickled
    for target in ("kitten", 10, -1):
        with pytest.raises(DataError, match=r"valid classes.*0 airplane.*9 truck"):
            build_index("cifar10", root, target)


def test_class_folders_standard_names_keep_standard_indices(tmp_path: Path) -> None:
    write_class_folders(tmp_path, {"cat": (3, 2), "dog": (4, 3), "truck": (1, 2)})
    index = index_cifar10(tmp_path)
    assert index.classes == CIFAR10_CLASSES
    train, test = build_datasets("cifar10", tmp_path, 5, image_size=8)
    assert len(train) == 4 and {s.group for s in train.samples} == {"dog"}
    assert len(test) == 7 and test.labels.count(0) == 3
    with pytest.raises(DataError, match=r"valid classes.*3 cat, 5 dog, 9 truck"):
        build_index("cifar10", tmp_path, 0)  # airplane has no images here


def test_class_folders_other_names_in_sorted_order(tmp_path: Path) -> None:
    write_class_folders(tmp_path, {"zebra": (2, 2), "apple": (3, 1), "mango": (2, 4)})
    index = index_cifar10(tmp_path)
    assert index.classes == ("apple", "mango", "zebra")
    train = build_index("cifar10", tmp_path, 1).train
    assert Counter(s.group for s in train) == {"mango": 2}


def test_layout_mismatch_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"not a CIFAR-10 folder: expected.*cifar-10-batches-py"):
        build_index("cifar10", tmp_path, 0)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nowhere does not exist"):
        build_index("cifar10", tmp_path / "nowhere", 0)
