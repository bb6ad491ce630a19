"""A property-based guard on the Python API: whatever a caller passes to ``piade.fit``,
``piade.load``, ``Detector.score`` or the two config classes, the call succeeds or raises a
:class:`piade.PiadeError` whose message names the argument at fault, never a ``TypeError`` or a
``RuntimeError`` from deep inside torch. See docs/reliability.md ("The Python API").

No draw trains anything: every ``fit`` draw holds at least one bad argument, and fit checks its
arguments before it builds a model or writes a file (the test checks nothing was written).
"""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fakes import TINY_BACKBONE
from tests.reliability.conftest import SIZE

import piade
from piade import ModelConfig, PiadeError, TrainConfig

GUARD = settings(
    max_examples=60,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Values of every kind a caller may pass by mistake
AWKWARD: tuple[Any, ...] = (None, True, False, 0, -1, 3, 1.5, math.nan, math.inf, -math.inf, "",
                            "abc", "3", b"\xff\xfe", [], [1, 2], {}, {"a": 1}, (), (0,), (1, "2"),
                            object(), np.float32(2.0), np.int64(3), np.zeros(3))  # fmt: skip


def _images(kind: str) -> Any:
    """Bad (or borderline) image batches for ``Detector.score``."""
    good = torch.rand(2, 3, SIZE, SIZE)
    return {
        "numpy": good.numpy(),
        "list": good.tolist(),
        "uint8": (good * 255).to(torch.uint8),
        "bool": good > 0.5,
        "int64": (good * 255).long(),
        "float64": good.double(),
        "half": good.half(),
        "no batch": good[0],
        "grey": good[:, :1],
        "rgba": torch.rand(2, 4, SIZE, SIZE),
        "wrong size": torch.rand(2, 3, SIZE + 8, SIZE + 8),
        "not square": torch.rand(2, 3, SIZE, SIZE * 2),
        "channels last": good.permute(0, 2, 3, 1),
        "five dims": good[None],
        "empty batch": good[:0],
        "nan": good.clone().index_fill_(0, torch.tensor([1]), math.nan),
        "inf": good.clone().index_fill_(0, torch.tensor([0]), math.inf),
        "0-255": good * 255,
        "[-1, 1]": good * 2 - 1,
        "good": good,
    }[kind]


IMAGE_KINDS = ("numpy", "list", "uint8", "bool", "int64", "float64", "half", "no batch", "grey",
               "rgba", "wrong size", "not square", "channels last", "five dims", "empty batch",
               "nan", "inf", "0-255", "[-1, 1]", "good")  # fmt: skip


@pytest.fixture(scope="module")
def detector(model_file: Path) -> piade.Detector:
    return piade.load(model_file)


@given(images=st.sampled_from(IMAGE_KINDS), map_kind=st.sampled_from((None, "ssim", *AWKWARD)))
@GUARD
def test_score_succeeds_or_names_the_argument(
    detector: piade.Detector, images: str, map_kind: Any
) -> None:
    try:
        found = detector.score(_images(images), map_kind=map_kind)
    except PiadeError as error:
        assert "images" in str(error) or "map_kind" in str(error), (images, map_kind, error)
        return
    assert images in ("good", "float64", "half"), (images, "was scored")
    assert found.score.shape == (len(_images(images)),)
    assert torch.isfinite(found.score).all()


@pytest.mark.parametrize("images", IMAGE_KINDS)
def test_every_image_kind_is_scored_or_named(detector: piade.Detector, images: str) -> None:
    """Each kind once, so no kind depends on a lucky draw (an empty batch once reached torch)."""
    if images in ("good", "float64", "half"):
        assert detector.score(_images(images)).score.shape == (2,)
    else:
        with pytest.raises(PiadeError, match="images"):
            detector.score(_images(images))


def _places(root: Path) -> dict[str, Any]:
    """Things that are not a model file, each under ``root``."""
    (root / "text.txt").write_text("just some text\n")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.bin").write_bytes(b"")
    (root / "folder").mkdir(exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    (root / "run" / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    header = (2**40).to_bytes(8, "little")  # a header length far beyond the file
    (root / "huge_header.safetensors").write_bytes(header + b"{}")
    return {
        "missing": root / "nowhere" / "model.safetensors",
        "text file": root / "text.txt",
        "binary file": root / "binary.bin",
        "empty file": root / "empty.bin",
        "folder without a model": root / "folder",
        "run with a broken model": root / "run",
        "huge header": root / "huge_header.safetensors",
        "empty string": "",
    }


def test_load_names_what_is_not_a_model(tmp_path: Path, model_file: Path) -> None:
    places = _places(tmp_path)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    places["truncated model"] = truncated

    @given(path=st.sampled_from([*places.values(), *AWKWARD]))
    @GUARD
    def check(path: Any) -> None:
        with pytest.raises(PiadeError) as caught:
            piade.load(path)
        message = str(caught.value)
        assert message.startswith("path") or str(path) in message, (path, message)

    check()


FIELDS = {cls: [f.name for f in dataclasses.fields(cls)] for cls in (ModelConfig, TrainConfig)}


@given(
    cls=st.sampled_from((ModelConfig, TrainConfig)),
    data=st.data(),
    value=st.sampled_from(AWKWARD),
)
@GUARD
def test_config_fields_take_values_of_their_type_or_name_themselves(
    cls: type, data: st.DataObject, value: Any
) -> None:
    name = data.draw(st.sampled_from(FIELDS[cls]))
    try:
        cls(**{name: value})
    except PiadeError as error:
        assert name in str(error), (name, value, error)


def _train_set(n: int = 4, size: int = SIZE) -> list[dict[str, torch.Tensor]]:
    return [{"image": torch.rand(3, size, size)} for _ in range(n)]


BAD_TRAIN_SETS: tuple[Any, ...] = (*AWKWARD, [{}], [{"image": "x"}], [{"image": torch.rand(3, 8)}],
                                   _train_set(4, SIZE + 8), torch.rand(4, 3, SIZE, SIZE))  # fmt: skip
ARGUMENTS = ("train_set", "out_dir", "model_config", "train_config")


@st.composite
def fit_call(draw: st.DrawFn, root: Path) -> tuple[dict[str, Any], list[str]]:
    """Keyword arguments of ``piade.fit`` with at least one of them bad, and the bad ones' names."""
    bad = draw(st.lists(st.sampled_from(ARGUMENTS), min_size=1, max_size=4, unique=True))
    arguments: dict[str, Any] = {
        "train_set": _train_set(),
        "out_dir": root / "run",
        "model_config": ModelConfig(image_size=SIZE, backbone=TINY_BACKBONE),
        "train_config": TrainConfig(epochs=1, batch_size=2, device="cpu"),
    }
    for name in bad:
        if name == "train_set":
            arguments[name] = draw(st.sampled_from(BAD_TRAIN_SETS))
        elif name == "out_dir":
            arguments[name] = draw(st.sampled_from([v for v in AWKWARD if not isinstance(v, str)]))
        else:
            arguments[name] = draw(st.sampled_from((*AWKWARD, {"epochs": 1})))
    return arguments, bad


def test_fit_names_a_bad_argument_before_writing_anything(tmp_path: Path) -> None:
    @given(call=fit_call(tmp_path))
    @GUARD
    def check(call: tuple[dict[str, Any], list[str]]) -> None:
        arguments, bad = call
        train_set = arguments.pop("train_set")
        out_dir = arguments.pop("out_dir")
        with pytest.raises(PiadeError) as caught:
            piade.fit(train_set, out_dir, **arguments)
        assert any(str(caught.value).startswith(name) for name in bad), (bad, caught.value)
        assert not (tmp_path / "run").exists(), "fit wrote before refusing"

    check()
