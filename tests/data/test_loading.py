"""Decoding once into memory: items, batching, the disk cache, unreadable files and on_error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.data.writers import write_folder, write_mvtec
from torch.utils.data import DataLoader

import piade.data.loading
from piade.data import DataWarning, ImageDataset, Sample, build_datasets
from piade.errors import ConfigError, DataError


@pytest.fixture
def mvtec(tmp_path: Path) -> Path:
    write_mvtec(tmp_path / "data", n_train=6)
    return tmp_path / "data"


def _break(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    else:
        path.write_bytes(b"this is not an image")


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_unreadable_image_stops_with_its_name(mvtec: Path, how: str) -> None:
    bad = mvtec / "widget" / "train" / "good" / "003.png"
    _break(bad, how)
    with pytest.raises(DataError, match=rf"cannot read image {bad}.*on_error='skip'"):
        build_datasets("mvtec", mvtec, "widget", image_size=8)


def test_skip_leaves_unreadable_files_out_with_a_warning(mvtec: Path) -> None:
    bad = [mvtec / "widget" / "train" / "good" / f"00{i}.png" for i in (1, 4)]
    for path in bad:
        _break(path, "truncated")
    with pytest.warns(DataWarning) as caught:
        train, test = build_datasets("mvtec", mvtec, "widget", image_size=8, on_error="skip")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2
    assert all(any(f"cannot read image {p}" in m for m in messages) for p in bad)
    assert len(train) == 4 and len(train.labels) == 4 and train.images.shape[0] == 4
    assert str(bad[0]) not in {s.source for s in train.samples}
    assert len(test) == 5


def test_skip_covers_an_unreadable_mask(mvtec: Path) -> None:
    mask = mvtec / "widget" / "ground_truth" / "scratch" / "001_mask.png"
    _break(mask, "garbage")
    with pytest.raises(DataError, match=rf"cannot read mask {mask}"):
        build_datasets("mvtec", mvtec, "widget", image_size=8)
    with pytest.warns(DataWarning, match="001_mask.png"):
        _, test = build_datasets("mvtec", mvtec, "widget", image_size=8, on_error="skip")
    assert len(test) == 4 and test.masks.shape == (4, 1, 8, 8)
    assert test.masks[2:].sum() > 0  # the remaining masks kept their rows


def test_everything_skipped_is_an_error(tmp_path: Path) -> None:
    write_folder(tmp_path, n_normal=2, n_abnormal=0)
    for path in (tmp_path / "good").iterdir():
        _break(path, "garbage")
    with pytest.warns(DataWarning), pytest.raises(DataError, match=r"no readable .* left"):
        build_datasets("folder", tmp_path, "good", image_size=8, on_error="skip", normal_split=0)


def test_dataloader_batches_and_getitems(mvtec: Path) -> None:
    _, test = build_datasets("mvtec", mvtec, "widget", image_size=16)
    batch = next(iter(DataLoader(test, batch_size=4, shuffle=False)))
    assert batch["image"].shape == (4, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 1, 16, 16) and batch["mask"].dtype == torch.float32
    assert batch["label"].tolist() == [0, 0, 1, 1] and len(batch["path"]) == 4
    one_by_one = [test[i] for i in (4, 0, 2)]
    for a, b in zip(test.__getitems__([4, 0, 2]), one_by_one, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
        assert (a["label"], a["path"]) == (b["label"], b["path"])


def test_sets_without_masks_share_one_zero_mask(mvtec: Path) -> None:
    train, _ = build_datasets("mvtec", mvtec, "widget", image_size=16)
    assert train.masks.shape == (6, 1, 16, 16) and train.masks.stride(0) == 0
    assert torch.equal(train[0]["mask"], torch.zeros(1, 16, 16))


def test_thread_count_does_not_change_the_result(mvtec: Path) -> None:
    one, _ = build_datasets("mvtec", mvtec, "widget", image_size=12, workers=1)
    many, _ = build_datasets("mvtec", mvtec, "widget", image_size=12, workers=4)
    assert torch.equal(one.images, many.images) and one.samples == many.samples


def test_disk_cache_hits_and_invalidation(mvtec: Path, tmp_path: Path, monkeypatch) -> None:
    calls: list[int] = []
    resize = piade.data.loading.resize_image

    def counting(rgb: np.ndarray, size: int, crop: float = 1.0) -> torch.Tensor:
        calls.append(size)
        return resize(rgb, size, crop)

    monkeypatch.setattr(piade.data.loading, "resize_image", counting)
    cache = tmp_path / "cache"
    first, _ = build_datasets("mvtec", mvtec, "widget", image_size=8, cache_dir=cache)
    assert len(calls) == 11 and len(list(cache.rglob("*.npy"))) == 11 + 3  # images + masks
    calls.clear()
    again, test = build_datasets("mvtec", mvtec, "widget", image_size=8, cache_dir=cache)
    assert calls == [] and torch.equal(again.images, first.images)
    assert test.masks[2:].sum() > 0
    touched = Path(first.samples[0].source)
    os.utime(touched, ns=(1_000_000_000, 1_000_000_000))
    build_datasets("mvtec", mvtec, "widget", image_size=8, cache_dir=cache)
    assert calls == [8]  # only the touched file missed
    calls.clear()
    build_datasets("mvtec", mvtec, "widget", image_size=10, cache_dir=cache)
    assert len(calls) == 11  # another size is another entry


def test_damaged_cache_entry_is_rewritten(mvtec: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, _ = build_datasets("mvtec", mvtec, "widget", image_size=8, cache_dir=cache)
    for entry in cache.rglob("*.npy"):
        entry.write_bytes(b"damaged")
    again, _ = build_datasets("mvtec", mvtec, "widget", image_size=8, cache_dir=cache)
    assert torch.equal(again.images, first.images)


def test_empty_sample_list_gives_an_empty_dataset(tmp_path: Path) -> None:
    write_folder(tmp_path, n_abnormal=0)
    train, test = build_datasets("folder", tmp_path, "good", image_size=8, normal_split=0)
    assert len(train) == 10 and len(test) == 0 and test.images.shape == (0, 3, 8, 8)


def test_dataset_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset([Sample("x")], torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="1 samples but 2 images"):
        ImageDataset([Sample("x")], torch.zeros(2, 3, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_error": "ignore"}, "on_error must be"),
        ({"image_size": 0}, "image_size must be"),
        ({"workers": 0}, "workers must be"),
    ],
)
def test_bad_load_options(mvtec: Path, options: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {"image_size": 8, **options}
    with pytest.raises(ConfigError, match=message):
        build_datasets("mvtec", mvtec, "widget", **kwargs)  # type: ignore[arg-type]
