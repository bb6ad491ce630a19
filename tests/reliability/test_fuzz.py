"""Fuzzing the image-reading and scoring path: any bytes give a score or a DataError, never a crash
or a hang. Bounded to a few seconds (``max_examples``, ``deadline``). See docs/reliability.md."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tests.reliability.badfiles import encode, pixels
from tests.reliability.conftest import tiny_detector

from piade.data.decode import read_rgb, resize_image
from piade.errors import DataError
from piade.inference.detector import Detector

# Pillow warns about damaged metadata (e.g. TIFF tags) in files that still decode; not a failure.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FAST = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),  # a decoder that hangs fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SUFFIXES = (".png", ".jpg", ".bmp", ".tif", ".gif", ".webp")


def _seeds() -> dict[str, bytes]:
    """Valid files in several formats and modes: the starting points of the mutations."""
    rgb = Image.fromarray(pixels(12))
    return {
        "png": encode(rgb),
        "png16": encode(Image.fromarray(pixels(12)[..., 0].astype(np.uint16) * 257)),
        "palette": encode(rgb.quantize(8)),
        "jpeg": encode(rgb, "JPEG"),
        "cmyk": encode(rgb.convert("CMYK"), "JPEG"),
        "bmp": encode(rgb, "BMP"),
        "tiff": encode(rgb, "TIFF"),
        "gif": encode(rgb, "GIF"),
        "webp": encode(rgb, "WEBP"),
    }


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid file with bytes flipped, a run inserted or removed, and/or the tail cut."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=32))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@pytest.fixture(scope="module")
def detector() -> Detector:
    return tiny_detector()


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _read(scratch: Path, data: bytes, suffix: str) -> np.ndarray | None:
    """``read_rgb`` of ``data`` saved as ``image<suffix>``: the pixels, or None after a DataError
    that names the file and the fix (any other exception fails the test)."""
    path = scratch / f"image{suffix}"
    path.write_bytes(data)
    try:
        rgb = read_rgb(str(path))
    except DataError as error:
        assert str(path) in str(error) and "--on-error skip" in str(error)
        return None
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.size > 0
    return rgb


@FAST
@given(data=st.one_of(st.binary(max_size=512), mutated()), suffix=st.sampled_from(SUFFIXES))
def test_any_bytes_decode_or_raise_a_data_error(scratch: Path, data: bytes, suffix: str) -> None:
    _read(scratch, data, suffix)


@settings(FAST, max_examples=40)
@given(data=mutated(), suffix=st.sampled_from(SUFFIXES))
def test_whatever_decodes_gets_a_finite_score(
    scratch: Path, detector: Detector, data: bytes, suffix: str
) -> None:
    rgb = _read(scratch, data, suffix)
    if rgb is not None:
        _assert_scores(detector, [rgb])


@settings(FAST, max_examples=25)
@given(
    shapes=st.lists(st.tuples(st.integers(1, 90), st.integers(1, 90)), min_size=1, max_size=4),
    pattern=st.sampled_from(["noise", "black", "white", "stripes"]),
    seed=st.integers(0, 2**16),
)
def test_any_image_shape_and_content_gets_a_finite_score(
    detector: Detector, shapes: list[tuple[int, int]], pattern: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    images = []
    for height, width in shapes:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        if pattern != "noise":
            image[:] = 0 if pattern == "black" else 255
            if pattern == "stripes":
                image[::2] = 0
        images.append(image)
    _assert_scores(detector, images)


def _assert_scores(detector: Detector, images: list[np.ndarray]) -> None:
    """Score ``images`` through predict's path (resize, then the detector): finite, one each."""
    batch = torch.stack([resize_image(image, detector.image_size) for image in images])
    result = detector.score(batch.float() / 255)
    assert result.score.shape == (len(images),)
    assert torch.isfinite(result.score).all() and torch.isfinite(result.anomaly_map).all()
    assert set(result.label.tolist()) <= {0, 1}
