"""The public entry point ``build_datasets``: names, options, and the package's import boundary."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch
from tests.data.writers import write_cifar_pickle, write_coil, write_folder, write_mvtec

import piade.data
from piade.data import DATASETS, ImageDataset, build_datasets, build_index
from piade.errors import ConfigError, DataError


def test_signature_is_the_documented_one() -> None:
    params = inspect.signature(build_datasets).parameters
    assert list(params) == [
        "name", "root", "target", "image_size", "seed", "before_decoding", "options"
    ]  # fmt: skip
    assert params["image_size"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["seed"].default == 0
    assert DATASETS == ("cifar10", "coil100", "mvtec", "folder")


def test_every_format_builds_two_datasets(tmp_path: Path) -> None:
    write_cifar_pickle(tmp_path / "cifar", [i % 10 for i in range(20)], list(range(10)))
    write_coil(tmp_path / "coil", 3, 5)
    write_mvtec(tmp_path / "mvtec")
    write_folder(tmp_path / "folder")
    cases = [
        ("cifar10", tmp_path / "cifar", 0, {}),
        ("coil100", tmp_path / "coil", 2, {}),
        ("mvtec", tmp_path / "mvtec", "widget", {}),
        ("folder", tmp_path / "folder", None, {"normal_dir": "good", "abnormal_dir": "bad"}),
    ]
    for name, root, target, options in cases:
        train, test = build_datasets(name, root, target, image_size=8, seed=1, **options)
        for dataset in (train, test):
            assert isinstance(dataset, ImageDataset) and dataset.image_size == 8
            assert isinstance(dataset, torch.utils.data.Dataset)
            assert dataset.images.dtype == torch.uint8 and len(dataset.labels) == len(dataset)
        assert set(train.labels) == {0} and set(test.labels) == {0, 1}, name


def test_unknown_name_and_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown data set 'imagenet'; choose one of cifar10"):
        build_datasets("imagenet", tmp_path, 0, image_size=8)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) normal_dir for 'mvtec'"):
        build_index("mvtec", tmp_path, "x", normal_dir="good")


def test_root_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no COIL root given"):
        build_index("coil100", None, 1)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match=r"file.txt is a file, expected a folder"):
        build_index("mvtec", tmp_path / "file.txt", "x")


def test_split_index_summary(tmp_path: Path) -> None:
    write_mvtec(tmp_path)
    summary = str(build_index("mvtec", tmp_path, "widget"))
    assert summary == "mvtec widget: 5 train, 5 test (2 normal, 3 anomalous, 3 masks)"


def test_data_package_imports_only_itself_and_errors() -> None:
    """piade.data must keep working while the rest of the package changes (piade.lazy only
    imports piade.data's own names on first use)."""
    for file in Path(piade.data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name == "piade" or name.startswith("piade."):
                    allowed = name in ("piade.errors", "piade.lazy") or name.startswith(
                        "piade.data"
                    )
                    assert allowed, (file, name)
