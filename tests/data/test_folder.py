"""A plain folder of the user's images: normal split, abnormal images, masks matched by stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data.writers import noise, save, write_folder

from piade.data import build_datasets, build_index
from piade.errors import ConfigError, DataError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path)


def test_seeded_normal_split(folder: Path) -> None:
    index = build_index("folder", folder, None, normal_dir="good", seed=3)
    assert len(index.train) == 8 and len(index.test) == 2  # 20 % of 10 normal images held out
    assert all(s.label == 0 for s in (*index.train, *index.test))
    assert not {s.source for s in index.train} & {s.source for s in index.test}
    assert build_index("folder", folder, None, normal_dir="good", seed=3) == index
    others = [build_index("folder", folder, None, normal_dir="good", seed=s) for s in range(4, 9)]
    assert any(o.test != index.test for o in others)


def test_normal_split_option_and_target_as_normal_dir(folder: Path) -> None:
    index = build_index("folder", folder, "good", normal_split=0.5)
    assert len(index.train) == 5 and len(index.test) == 5
    assert len(build_index("folder", folder, "good", normal_split=0).test) == 0


@pytest.mark.parametrize("mask_names", ["suffix", "stem"])
def test_abnormal_images_with_masks(tmp_path: Path, mask_names: str) -> None:
    write_folder(tmp_path, mask_names=mask_names)
    train, test = build_datasets(
        "folder",
        tmp_path,
        None,
        image_size=8,
        normal_dir="good",
        abnormal_dir="bad",
        mask_dir="masks",
    )
    assert len(train) == 8 and test.labels == [0, 0, 1, 1, 1]
    assert [Path(s.mask).name for s in test.samples[2:]] == [  # type: ignore[arg-type]
        f"a{i}_mask.png" if mask_names == "suffix" else f"a{i}.png" for i in range(3)
    ]
    expected = torch.zeros(8, 8, dtype=torch.uint8)
    expected[1:3, 1:3] = 1  # the square (2..6 of 16 px) at half size
    assert torch.equal(test.masks[2, 0], expected)
    assert test.masks[:2].sum() == 0


def test_abnormal_without_masks(folder: Path) -> None:
    index = build_index("folder", folder, None, normal_dir="good", abnormal_dir="bad")
    assert [s.label for s in index.test] == [0, 0, 1, 1, 1]
    assert all(s.mask is None for s in index.test)


def test_normal_test_dir_replaces_the_split(folder: Path) -> None:
    rng = np.random.default_rng(1)
    for i in range(4):
        save(folder / "good_test" / f"t{i}.png", noise(rng, 16))
    index = build_index(
        "folder", folder, None, normal_dir="good", normal_test_dir="good_test", abnormal_dir="bad"
    )
    assert len(index.train) == 10 and len(index.test) == 7


def test_absolute_folders_without_root(folder: Path) -> None:
    index = build_index(
        "folder", None, None, normal_dir=folder / "good", abnormal_dir=folder / "bad"
    )
    assert len(index.train) == 8 and len(index.test) == 5


def test_missing_mask_is_named(folder: Path) -> None:
    (folder / "masks" / "a1_mask.png").unlink()
    with pytest.raises(DataError, match=r"a1.png has no mask in .*masks: expected a file named a1"):
        build_index("folder", folder, None, normal_dir="good", abnormal_dir="bad", mask_dir="masks")


def test_missing_and_empty_folders(folder: Path) -> None:
    with pytest.raises(DataError, match=r"abnormal_dir .*nothere does not exist"):
        build_index("folder", folder, None, normal_dir="good", abnormal_dir="nothere")
    (folder / "empty").mkdir()
    with pytest.raises(DataError, match=r"no images found in .*empty"):
        build_index("folder", folder, None, normal_dir="empty")
    with pytest.raises(DataError, match=r"needs normal_dir"):
        build_index("folder", folder, None)
    with pytest.raises(DataError, match=r"mask_dir .* without abnormal_dir"):
        build_index("folder", folder, None, normal_dir="good", mask_dir="masks")


def test_bad_normal_split(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"normal_split must be"):
        build_index("folder", folder, "good", normal_split=1.0)
