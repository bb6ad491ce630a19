"""The main README command's code: the demo data and a (shortened) demo run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from piade.demo import CATEGORY, VALIDATION, make_demo_dataset, run_demo
from piade.inference.detector import load

pytest.importorskip("skimage")  # the demo's photographs (the `demo` extra)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_validation_images_leave_the_training_and_test_images_unchanged(tmp_path: Path) -> None:
    small = dict(size=32, n_train=6, n_test_good=3, n_test_defect=2)
    with_validation = _files(make_demo_dataset(tmp_path / "a", **small) / CATEGORY)
    without = make_demo_dataset(tmp_path / "b", n_validation_good=0, n_validation_defect=0, **small)
    assert with_validation == _files(without / CATEGORY)
    validation = tmp_path / "a" / VALIDATION
    assert len(list((validation / "good").glob("*.png"))) == 20
    assert len(list((validation / "defect").glob("*.png"))) == 3 * 4  # four of each kind


def test_the_demo_sets_its_threshold_on_labelled_validation_images(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its 16 held-out normal images are too few for the 0.99 quantile: the demo once warned so in
    the main README command. It now chooses the threshold on its validation images, silently."""
    with caplog.at_level(logging.WARNING):
        metrics = run_demo(tmp_path, epochs=1, image_size=32, device="cpu")
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING and "threshold" in r.message
    ]
    detector = load(tmp_path / "run" / "model.safetensors", device="cpu")
    assert detector.calibration.threshold_method == "f1-max:validation"
    assert (tmp_path / "evaluation" / "report.html").is_file()
    assert 0.0 <= metrics["image_auroc"] <= 1.0
