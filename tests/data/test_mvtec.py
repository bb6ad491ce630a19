"""MVTec AD: the published split, masks (found, aligned, checked), grey categories, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data.writers import save, write_mvtec

from piade.data import build_datasets, build_index
from piade.errors import DataError


@pytest.fixture
def mvtec(tmp_path: Path) -> Path:
    write_mvtec(tmp_path, "widget", defects={"scratch": 3, "hole": 2})
    return tmp_path


def test_published_split_counts_labels_masks(mvtec: Path) -> None:
    index = build_index("mvtec", mvtec, "widget")
    assert len(index.train) == 5 and all(s.label == 0 and s.mask is None for s in index.train)
    assert [s.group for s in index.test] == ["good"] * 2 + ["hole"] * 2 + ["scratch"] * 3
    assert [s.label for s in index.test] == [0, 0, 1, 1, 1, 1, 1]
    for sample in index.test[2:]:
        assert sample.mask == str(
            mvtec
            / "widget"
            / "ground_truth"
            / sample.group
            / f"{Path(sample.source).stem}_mask.png"
        )


def test_root_may_be_the_category_folder(mvtec: Path) -> None:
    assert build_index("mvtec", mvtec / "widget", None) == build_index("mvtec", mvtec, "widget")


@pytest.mark.parametrize("size", [16, 48])
def test_masks_stay_aligned_with_images(mvtec: Path, size: int) -> None:
    _, test = build_datasets("mvtec", mvtec, "widget", image_size=size)
    masks = test.masks[2:, 0].bool()  # (5, S, S)
    scale = size / 32
    expected = torch.zeros(size, size, dtype=torch.bool)
    expected[round(8 * scale) : round(16 * scale), round(8 * scale) : round(16 * scale)] = True
    assert torch.equal(masks, expected.expand_as(masks))
    bright = test.images[2:].float().mean(1) > 128  # the white square in the image
    inside = bright[masks].float().mean().item()
    outside = bright[~masks].float().mean().item()
    assert inside > 0.9 and outside < 0.05
    assert set(test.masks.unique().tolist()) == {0, 1}
    assert test.masks[:2].sum() == 0  # good images: zero masks


def test_mask_alignment_at_an_uneven_scale(tmp_path: Path) -> None:
    write_mvtec(tmp_path, size=30, box=(5, 11, 17, 23))
    _, test = build_datasets("mvtec", tmp_path, "widget", image_size=20)
    mask = test[2]["mask"][0] > 0.5
    bright = test[2]["image"].mean(0) > 0.5
    iou = (mask & bright).sum() / (mask | bright).sum()
    assert iou.item() > 0.8


def test_grey_category_becomes_three_channels(tmp_path: Path) -> None:
    write_mvtec(tmp_path, "screw", grey=True)
    train, test = build_datasets("mvtec", tmp_path, "screw", image_size=16)
    for images in (train.images, test.images):
        assert images.shape[1] == 3
        assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])


def test_item_format(mvtec: Path) -> None:
    _, test = build_datasets("mvtec", mvtec, "widget", image_size=16)
    item = test[4]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 16, 16)
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["mask"].dtype == torch.float32 and item["mask"].shape == (1, 16, 16)
    assert item["label"] == 1 and item["path"].endswith("000.png")


def test_defect_without_mask_names_image_and_expected_mask(mvtec: Path) -> None:
    mask = mvtec / "widget" / "ground_truth" / "hole" / "001_mask.png"
    mask.unlink()
    image = mvtec / "widget" / "test" / "hole" / "001.png"
    with pytest.raises(DataError, match=rf"{image} has no mask: expected {mask}"):
        build_index("mvtec", mvtec, "widget")


def test_mask_of_wrong_size(mvtec: Path) -> None:
    mask = mvtec / "widget" / "ground_truth" / "scratch" / "002_mask.png"
    save(mask, np.zeros((20, 32), dtype=np.uint8))
    with pytest.raises(DataError, match=rf"mask {mask} is 32x20 px but its image .*32x32"):
        build_datasets("mvtec", mvtec, "widget", image_size=16)


def test_unknown_category_lists_categories_on_disk(mvtec: Path) -> None:
    write_mvtec(mvtec, "gadget")
    with pytest.raises(DataError, match=r"unknown MVTec AD category 'bottle'.*gadget, widget"):
        build_index("mvtec", mvtec, "bottle")
    with pytest.raises(DataError, match=r"no MVTec AD category given.*gadget, widget"):
        build_index("mvtec", mvtec, None)


def test_layout_mismatch(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match=r"not an MVTec AD folder: expected <category>/train/good"):
        build_index("mvtec", tmp_path, "widget")
    (tmp_path / "widget" / "train").mkdir(parents=True)
    (tmp_path / "widget" / "test").mkdir()
    with pytest.raises(DataError, match=r"widget/train/good .*missing"):
        build_index("mvtec", tmp_path, "widget")


def test_no_images(tmp_path: Path) -> None:
    (tmp_path / "widget" / "train" / "good").mkdir(parents=True)
    (tmp_path / "widget" / "test" / "good").mkdir(parents=True)
    with pytest.raises(DataError, match=r"no images found in .*train/good"):
        build_index("mvtec", tmp_path, "widget")
