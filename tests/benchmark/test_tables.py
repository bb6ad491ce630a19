"""The paper's tables as data, and the benchmark tables built from result records (pure)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import pytest

from piade.benchmark.ablation import render_ablation
from piade.benchmark.paper import FIGURE_4, PAPER_TABLES, paper_mean, paper_value
from piade.benchmark.scores import render_scores, score_table
from piade.benchmark.tables import build_tables, class_order, write_tables


@pytest.mark.parametrize("suite", ["cifar10", "mvtec"])
def test_paper_rows_average_to_the_papers_own_mean_row(suite: str) -> None:
    table = PAPER_TABLES[suite]
    for column, values in table.columns.items():
        assert len(values) == (10 if suite == "cifar10" else 15)
        # the paper rounds its means to 3 decimals: a transcription slip would break this
        assert statistics.fmean(values.values()) == pytest.approx(table.means[column], abs=6e-4)


def test_figure_4_agrees_with_table_3_and_the_texts_nine_percent() -> None:
    for cls, (_, two) in FIGURE_4.items():  # its two-vector bars are Table 3's "Ours", rounded
        assert two == pytest.approx(paper_value("mvtec", "piade", cls), abs=0.005), cls
    differences = [two - one for one, two in FIGURE_4.values()]
    assert statistics.fmean(differences) == pytest.approx(0.09, abs=0.005)
    assert FIGURE_4["bottle"] == (0.97, 0.97)


def test_paper_lookup_maps_piade_methods_to_the_papers_columns() -> None:
    assert paper_value("mvtec", "piade", "bottle") == 0.968
    assert paper_value("mvtec", "ae-ssim", "bottle") == 0.875
    assert paper_value("cifar10", "kde", "cat") == 0.497
    assert paper_value("cifar10", "ae-l2", "cat") is None
    assert paper_mean("coil100", "piade") == 0.998
    assert paper_value("coil100", "piade", "obj1") is None
    assert paper_mean("folder", "piade") is None


def _record(method: str, cls: str, seed: int, auroc: float, **metrics: Any) -> dict[str, Any]:
    return {
        "suite": "mvtec",
        "class": cls,
        "method": method,
        "seed": seed,
        "metrics": {"image_auroc": auroc, "pixel_auroc": None, "aupro": None} | metrics,
        "cost": {
            "epochs": 3,
            "image_size": 32,
            "n_train": 10,
            "train_seconds": 1.5,
            "train_images_per_s": 20.0,
            "infer_images_per_s": 50.0,
            "peak_rss_mb": 500.0,
            "peak_cuda_mb": None,
            "device_name": "test cpu",
        },
        "settings": {"encoder_weights": None},
    }


RESULTS = [
    _record("piade", "bottle", 0, 0.80, pixel_auroc=0.9, aupro=0.7),
    _record("piade", "bottle", 1, 0.90, pixel_auroc=0.8, aupro=0.6),
    _record("piade", "wood", 0, 0.60, pixel_auroc=0.7, aupro=0.5),
    _record("piade-1v", "bottle", 0, 0.70),
    _record("piade-1v", "bottle", 1, 0.75),
    _record("ocsvm", "wood", 0, 0.55),
]


def test_table_rows_means_and_reference_columns() -> None:
    tables = build_tables(RESULTS, suite="mvtec")
    assert tables["classes"] == ["bottle", "wood"]  # the paper's row order
    assert tables["methods"] == ["piade", "piade-1v", "ocsvm"]
    bottle, wood = tables["image_auroc"]["rows"]
    assert bottle["piade"] == pytest.approx(0.85)
    assert bottle["piade std"] == pytest.approx(0.05)
    assert bottle["piade seeds"] == [0, 1]
    assert bottle["paper piade"] == 0.968 and wood["paper piade"] == 0.978
    assert bottle["ocsvm"] is None
    assert "paper ocsvm" not in bottle  # the paper's MVTec table has no OC-SVM column
    mean = tables["image_auroc"]["mean"]
    assert mean["piade"] == pytest.approx((0.85 + 0.60) / 2)
    assert mean["piade-1v classes"] == 1
    assert mean["paper piade"] == pytest.approx((0.968 + 0.978) / 2)
    assert tables["paper"]["means_all_classes"]["piade"] == 0.762


def test_ablation_pairs_the_two_variants_per_class() -> None:
    rows = build_tables(RESULTS, suite="mvtec")["ablation"]
    assert [r["class"] for r in rows] == ["bottle", "Mean"]
    assert rows[0]["one_vector"] == pytest.approx(0.725)
    assert rows[0]["difference"] == pytest.approx(0.85 - 0.725)
    # the paper's Fig. 4 beside ours; with bottle the only class, the mean row is bottle's
    assert (rows[0]["paper_one_vector"], rows[0]["paper_two_vectors"]) == (0.97, 0.97)
    assert rows[1]["paper_two_vectors"] == pytest.approx(0.97)
    page = render_ablation(rows, suite="mvtec")
    assert "| bottle | 0.725 | 0.850 | +0.125 | 0.97 | 0.97 | +0.00 |" in page


def test_ablation_has_no_paper_columns_outside_mvtec_or_its_figure() -> None:
    row = {"class": "bottle", "one_vector": 0.7, "two_vectors": 0.8, "difference": 0.1}
    assert "paper" not in render_ablation([row], suite="cifar10")
    rows = [row | {"class": "grid"}, row | {"class": "wood"}, row | {"class": "Mean"}]
    page = render_ablation(rows, suite="mvtec")
    assert "| grid | 0.700 | 0.800 | +0.100 | – | – | – |" in page  # no bar for grid
    assert "| wood | 0.700 | 0.800 | +0.100 | 0.89 | 0.98 | +0.09 |" in page
    assert "| Mean | 0.700 | 0.800 | +0.100 | – | – | – |" in page  # not over grid


def test_pixel_table_only_for_methods_with_maps() -> None:
    pixel = build_tables(RESULTS, suite="mvtec")["pixel"]
    assert set(pixel[0]) == {"class", "piade pixel_auroc", "piade aupro"}
    assert pixel[0]["piade aupro"] == pytest.approx(0.65)


def test_written_files_agree(tmp_path: Path) -> None:
    write_tables(tmp_path, RESULTS, suite="mvtec")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["runs"]) == len(RESULTS)
    with (tmp_path / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["class"] for r in rows] == ["bottle", "wood", "Mean"]
    assert rows[0]["piade"] == "0.8500" and rows[0]["paper piade"] == "0.9680"
    assert rows[1]["piade-1v"] == ""
    page = (tmp_path / "results.md").read_text()
    assert "| bottle | 0.850 ± 0.050 | 0.725 ± 0.025 | – | 0.968 |" in page
    assert "paper's mean, all its classes" in page and "0.762" in page
    assert "(1/2 classes)" in page
    assert (tmp_path / "ablation.png").stat().st_size > 1000
    assert "| bottle | 0.725 | 0.850 | +0.125 |" in (tmp_path / "ablation.md").read_text()


def test_tied_scores_are_warned_about_in_the_page(tmp_path: Path) -> None:
    import numpy as np

    from piade.benchmark.methods import score_warnings

    assert score_warnings(np.array([0.1, 0.3, 0.2])) == []
    (flat,) = score_warnings(np.full(83, 0.2635))
    assert "all 83 test scores are equal (0.2635)" in flat
    assert "ties decide" in score_warnings(np.array([1.0, 1.0, 1.0, 1.0, 2.0]))[0]
    tied = _record("ae-l2", "bottle", 0, 0.5) | {"warnings": [flat]}
    write_tables(tmp_path, [*RESULTS, tied], suite="mvtec")
    page = (tmp_path / "results.md").read_text()
    assert f"- ae-l2 bottle seed 0: {flat}" in page
    write_tables(tmp_path, RESULTS, suite="mvtec")  # records without warnings: no section
    assert "Warnings" not in (tmp_path / "results.md").read_text()


def test_class_order_is_natural_for_coil_objects() -> None:
    assert class_order("coil100", ["obj10", "obj2", "obj1"]) == ["obj1", "obj2", "obj10"]
    assert class_order("cifar10", ["truck", "cat", "airplane"]) == ["airplane", "cat", "truck"]


def test_score_table_shows_the_kinds_every_run_recorded() -> None:
    """Runs recorded before a score kind existed leave it out of the table, not the whole row."""
    old = _record("piade", "bottle", 0, 0.8) | {
        "fitted": {"image_auroc_by_score": {"loss": 0.8, "map-max": 0.9}}
    }
    new = _record("piade", "wood", 0, 0.7) | {
        "fitted": {"image_auroc_by_score": {"loss": 0.7, "map-max": 0.6, "loss-x-map": 0.95}}
    }
    none = _record("piade", "grid", 0, 0.5)  # before any score was recorded
    rows = score_table([old, new, none], ["bottle", "wood", "grid"])
    assert rows == [
        {"class": "bottle", "loss": 0.8, "map-max": 0.9},
        {"class": "wood", "loss": 0.7, "map-max": 0.6},
        {"class": "Mean", "loss": pytest.approx(0.75), "map-max": pytest.approx(0.75)},
    ]
    assert score_table([new], ["wood"])[0] == {
        "class": "wood",
        "loss": 0.7,
        "map-max": 0.6,
        "loss-x-map": 0.95,
    }
    page = render_scores(score_table([new], ["wood"]))
    assert page.splitlines()[0] == "| class | `loss` | `map-max` | `loss-x-map` |"
    assert "| wood | 0.700 | 0.600 | **0.950** |" in page
    assert score_table([none], ["grid"]) == []


def test_score_table_bolds_every_score_that_prints_as_the_best() -> None:
    """Two AUROCs that differ in the last bit of a float (0.9642857142857143 against ...142) tie."""
    row = {
        "class": "obj3",
        "loss": 0.9642857142857143,
        "loss-balanced": 0.9642857142857142,
        "map-max": 0.801,
    }
    assert "| obj3 | **0.964** | **0.964** | 0.801 |" in render_scores([row])
