"""``piade predict``'s maps: overlay, heat map alone or none, written by a pool of threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.fakes import normal_image
from tests.reliability.conftest import tiny_detector

from piade.errors import DataError
from piade.inference.maps import _palette, map_image
from piade.inference.predict import predict


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    for i, size in enumerate((40, 40, 56, 72, 40)):  # sizes differ from the model's 32 px
        Image.fromarray(normal_image(rng, size)).save(folder / f"part{i}.png")
    return folder


def _rows(csv_path: Path) -> list[dict[str, str]]:
    import csv

    with csv_path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("style", ["overlay", "heatmap"])
def test_maps_have_each_images_size_and_style(images: Path, tmp_path: Path, style: str) -> None:
    detector = tiny_detector()
    summary = predict(detector, [images], tmp_path / style, batch_size=2, maps=style)
    rows = _rows(summary.csv_path)
    assert summary.scored == 5 and len(rows) == 5
    for row in rows:
        source = np.asarray(Image.open(row["path"]).convert("RGB"))
        drawn = np.asarray(Image.open(row["map"]))
        assert drawn.shape == source.shape, row
        colours = {tuple(c) for c in np.asarray(_palette(), dtype=np.uint8).reshape(-1, 3)}
        pure_heat = all(tuple(p) in colours for p in drawn.reshape(-1, 3)[::37])
        assert pure_heat == (style == "heatmap"), row  # an overlay mixes in the image


def test_jpg_maps_are_jpegs_close_to_the_png_maps(images: Path, tmp_path: Path) -> None:
    detector = tiny_detector()
    png = _rows(predict(detector, [images], tmp_path / "png", batch_size=2).csv_path)
    jpg = _rows(
        predict(detector, [images], tmp_path / "jpg", batch_size=2, map_format="jpg").csv_path
    )
    assert [r["score"] for r in jpg] == [r["score"] for r in png]
    for lossless, lossy in zip(png, jpg, strict=True):
        assert lossy["map"].endswith(".jpg") and Image.open(lossy["map"]).format == "JPEG"
        assert Path(lossy["map"]).stem == Path(lossless["map"]).stem
        exact = np.asarray(Image.open(lossless["map"]), dtype=np.float64)
        drawn = np.asarray(Image.open(lossy["map"]), dtype=np.float64)
        assert drawn.shape == exact.shape
        assert np.abs(drawn - exact).mean() < 4  # JPEG at quality 90: a few grey levels


def test_an_unknown_map_format_is_refused(images: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="map_format='gif'"):
        predict(tiny_detector(), [images], tmp_path / "out", map_format="gif")


def test_overlay_is_the_half_and_half_blend(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = (rng.random((30, 20, 3)) * 255).astype(np.uint8)
    anomaly = rng.random((30, 20)) * 3
    drawn = np.asarray(map_image(anomaly, image, scale=2.0)).astype(np.int16)
    palette = np.asarray(_palette(), dtype=np.float64).reshape(256, 3)
    level = (np.clip(anomaly / 2.0, 0, 1) * 255).round().astype(int)
    expected = 0.5 * image + 0.5 * palette[level]
    assert np.abs(drawn - expected).max() <= 1


def test_no_maps_writes_scores_only(images: Path, tmp_path: Path) -> None:
    summary = predict(tiny_detector(), [images], tmp_path / "out", maps="none")
    assert summary.scored == 5 and not (tmp_path / "out" / "maps").exists()
    assert all(row["map"] == "" for row in _rows(summary.csv_path))


def test_an_unknown_map_style_is_refused(images: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="maps='both'"):
        predict(tiny_detector(), [images], tmp_path / "out", maps="both")
    assert not (tmp_path / "out").exists()


def test_a_map_that_cannot_be_written_stops_predict_with_its_error(
    images: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import piade.inference.maps as module

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "save_map", full_disk)
    with pytest.raises(OSError, match="No space left"):
        predict(tiny_detector(), [images], tmp_path / "out", batch_size=2)
