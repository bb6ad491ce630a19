"""COIL-100 / COIL-20: file names, per-object 80/20 split with drawn anomalies, grey images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.data.writers import write_coil

from piade.data import build_datasets, build_index, index_coil
from piade.errors import DataError

N_OBJECTS, N_POSES = 4, 10


@pytest.fixture
def coil(tmp_path: Path) -> Path:
    return write_coil(tmp_path / "coil-20-proc", N_OBJECTS, N_POSES)


def test_index_sorts_objects_and_poses_numerically(coil: Path) -> None:
    index = index_coil(coil)
    assert sorted(index.objects) == [1, 2, 3, 4]
    poses = [Path(s.source).name for s in index.objects[2]]
    assert poses == [f"obj2__{a}.png" for a in range(N_POSES)]


def test_split_counts_labels_and_disjointness(coil: Path) -> None:
    index = build_index("coil100", coil, 2, seed=0)
    train, test = index.train, index.test
    assert len(train) == 8  # 80 % of 10
    normal = [s for s in test if s.label == 0]
    anomalous = [s for s in test if s.label == 1]
    assert len(normal) == 2 and len(anomalous) == 2  # as many anomalies as normal test images
    assert all(s.group == "obj2" for s in (*train, *normal))
    assert all(s.group != "obj2" for s in anomalous)
    sources = [s.source for s in (*train, *test)]
    assert len(set(sources)) == len(sources)  # train and test disjoint
    own = {s.source for s in index_coil(coil).objects[2]}
    assert {s.source for s in (*train, *normal)} == own


def test_split_is_reproducible_and_depends_on_seed(coil: Path) -> None:
    first = build_index("coil100", coil, 1, seed=7)
    assert build_index("coil100", coil, 1, seed=7) == first
    others = [build_index("coil100", coil, 1, seed=s) for s in range(8, 12)]
    assert any(o.train != first.train for o in others)
    assert any(o.test[2:] != first.test[2:] for o in others)  # the drawn anomalies change too


def test_train_fraction_option(coil: Path) -> None:
    assert len(build_index("coil100", coil, 1, train_fraction=0.5).train) == 5


def test_grey_becomes_three_equal_channels(coil: Path) -> None:
    train, test = build_datasets("coil100", coil, 3, image_size=8)
    assert train.images.shape == (8, 3, 8, 8) and len(test) == 4
    assert torch.equal(train.images[:, 0], train.images[:, 1])
    assert torch.equal(train.images[:, 0], train.images[:, 2])
    assert abs(train.images.float().mean().item() - 60) < 5  # object 3 is ~60 bright


def test_root_may_be_the_parent_folder(coil: Path) -> None:
    assert index_coil(coil.parent).folder == coil


def test_several_coil_folders_are_ambiguous(coil: Path) -> None:
    write_coil(coil.parent / "coil-100", 2, 3)
    with pytest.raises(DataError, match=r"several folders of COIL images"):
        index_coil(coil.parent)


def test_unknown_object_lists_valid_ids(coil: Path) -> None:
    with pytest.raises(DataError, match=r"unknown COIL object id 9 .*valid ids: 1-4"):
        build_index("coil100", coil, 9)


def test_no_coil_files(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"no COIL images .*objN__A.png"):
        build_index("coil100", tmp_path, 1)


def test_single_object_cannot_draw_anomalies(tmp_path: Path) -> None:
    write_coil(tmp_path, 1, 10)
    with pytest.raises(DataError, match=r"images of other objects"):
        build_index("coil100", tmp_path, 1)
