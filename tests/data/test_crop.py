"""The central crop: the box, images and masks cut alike, data sets and the disk cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data.writers import write_mvtec

from piade.data import build_datasets
from piade.data.decode import center_box, place_in_box, resize_image, resize_mask
from piade.errors import ConfigError


def test_the_box_is_central_and_keeps_the_share_asked_for() -> None:
    assert center_box(900, 900, 1.0) == (0, 0, 900, 900)
    assert center_box(900, 900, 120 / 156) == (104, 104, 796, 796)  # 692 px, the authors' 76.9 %
    assert center_box(30, 41, 0.5) == (8, 10, 22, 31)  # margins equal on opposite sides
    assert center_box(1, 1, 0.1) == (0, 0, 1, 1) and center_box(3, 3, 0.1) == (1, 1, 2, 2)


def test_image_and_mask_are_cut_alike_then_resized() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:30, 15:45] = True  # exactly the central half of each side
    top, left, bottom, right = center_box(40, 60, 0.5)
    assert (top, left, bottom, right) == (10, 15, 30, 45)
    assert torch.equal(resize_image(image, 16, 0.5), resize_image(image[10:30, 15:45], 16))
    assert resize_mask(mask, 16, 0.5).all()  # the defect fills the crop
    assert resize_mask(mask, 16).float().mean().item() == pytest.approx(0.25, abs=0.05)


def test_place_in_box_lays_a_map_on_the_whole_image() -> None:
    inner = np.ones((20, 30), dtype=np.float32)
    full = place_in_box(inner, 40, 60, (10, 15, 30, 45))
    assert full.shape == (40, 60) and full.sum() == 600 and full[10:30, 15:45].all()
    assert place_in_box(inner, 20, 30, (0, 0, 20, 30)) is inner


def test_data_sets_are_cut_and_cached_apart(tmp_path: Path) -> None:
    root = write_mvtec(tmp_path / "data", size=32, box=(8, 8, 24, 24))  # the central half
    cache = tmp_path / "cache"
    whole = build_datasets("mvtec", root, "widget", image_size=16, cache_dir=cache)[1]
    cut = build_datasets("mvtec", root, "widget", image_size=16, cache_dir=cache, center_crop=0.5)
    train, test = cut
    assert train.center_crop == test.center_crop == 0.5 and whole.center_crop == 1.0
    defect = [i for i, s in enumerate(test.samples) if s.mask is not None]
    assert defect and all(test.masks[i].all() for i in defect)  # the square fills the crop
    assert all(whole.masks[i].float().mean() == 0.25 for i in defect)
    again = build_datasets("mvtec", root, "widget", image_size=16, cache_dir=cache, center_crop=0.5)
    assert torch.equal(again[1].images, test.images)  # read back from the cache
    assert not torch.equal(whole.images, test.images)  # the uncut entries are not reused


@pytest.mark.parametrize("crop", [0, -0.5, 1.5, True, "half"])
def test_a_bad_crop_is_named(tmp_path: Path, crop: object) -> None:
    root = write_mvtec(tmp_path / "data", size=16)
    with pytest.raises(ConfigError, match="center_crop must be a share of each side"):
        build_datasets("mvtec", root, "widget", image_size=16, center_crop=crop)
