"""docs/results.md is generated from the benchmark JSON, and stays in step with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.benchmark.test_tables import RESULTS

from piade.benchmark.page import mean_interval, render_page
from piade.benchmark.tables import build_tables, write_tables
from piade.metrics import auroc_interval_from_counts, auroc_standard_error_from_counts

REPO = Path(__file__).resolve().parents[2]


def test_docs_results_page_is_generated_from_the_committed_json() -> None:
    script = REPO / "benchmarks" / "results_page.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_page_compares_with_the_paper_and_names_the_weights(tmp_path: Path) -> None:
    runs = [r | {"root": "data/mvtec", "command": "piade benchmark mvtec", "piade_version": "0"}
            for r in RESULTS]  # fmt: skip
    for r in runs:  # new dicts: RESULTS is shared with other tests, which must not see these
        r["cost"] = r["cost"] | {
            "device": "cpu",
            "cpu_count": 2,
            "torch_threads": 2,
            "torch": "2",
            "python": "3",
            "train_seconds": 50.0,
            "infer_seconds": 10.0,
        }
        r["settings"] = r["settings"] | {
            "backbone": "resnet18",
            "perceptual_net": "vgg16",
            "perceptual_weights": "/somewhere/vgg16_features.pth",
        }
        r["fitted"] = {"batch_size": 16} if r["method"].startswith("piade") else {}
    (tmp_path / "results").mkdir()
    write_tables(tmp_path / "results", runs, suite="mvtec")
    page = render_page([tmp_path / "results" / "results.json"], base=tmp_path)
    assert "random initialisation (no pretrained weights)" in page
    # the runs predate --perceptual-depth: they ran with its default, the first four modules
    assert "vgg16().features[:4] with the file `vgg16_features.pth`" in page
    # piade's mean here (0.85 + 0.60) / 2 = 0.725 against the paper's (0.968 + 0.978) / 2 = 0.973
    assert 'mean image AUROC 0.725 here against 0.973 in the paper\'s column "Ours"' in page
    assert "0.248 below it" in page
    assert (
        "![ablation](results/ablation.png)" not in page
    )  # the chart is looked up as NAME-ablation.png
    assert "](results/results.json)" in page
    assert "| piade | 3 | 3.0 |" in page  # three runs of 60 s


def test_the_comparison_gives_the_test_sets_interval(tmp_path: Path) -> None:
    runs = [
        r | {"root": "data/mvtec", "command": "piade benchmark mvtec", "piade_version": "0"}
        for r in RESULTS
    ]
    for r in runs:
        r["metrics"] = r["metrics"] | {"n_normal": 20, "n_anomalous": 63}
        r["cost"] = r["cost"] | {"device": "cpu", "cpu_count": 2, "torch_threads": 2,
                                 "torch": "2", "python": "3", "infer_seconds": 1.0}  # fmt: skip
        r["settings"] = r["settings"] | {
            "backbone": "resnet18",
            "perceptual_net": "vgg16",
            "perceptual_weights": None,
        }
        r["fitted"] = {}
    tables = build_tables(runs, suite="mvtec") | {"runs": runs}  # as results.json holds them
    # two classes, bottle (seeds 0.80 and 0.90: 0.85) and wood 0.60: mean ± 1.96·sqrt(Σ se²) / 2
    se = [auroc_standard_error_from_counts(a, 20, 63) for a in (0.85, 0.60)]
    half = 1.959963984540054 * (se[0] ** 2 + se[1] ** 2) ** 0.5 / 2
    low, high = mean_interval(tables, "piade")  # type: ignore[misc]
    assert (low, high) == pytest.approx((0.725 - half, 0.725 + half), abs=1e-12)
    assert 0.05 < half < 0.15  # 20 + 63 images leave a wide interval
    bottle = [r for r in runs if r["class"] == "bottle"]
    only_bottle = build_tables(bottle, suite="mvtec") | {"runs": bottle}
    assert mean_interval(only_bottle, "piade") == pytest.approx(
        auroc_interval_from_counts(0.85, 20, 63), abs=1e-12
    )
    (tmp_path / "results").mkdir()
    write_tables(tmp_path / "results", runs, suite="mvtec")
    page = render_page([tmp_path / "results" / "results.json"], base=tmp_path)
    assert (
        f"0.248 below it (95 % interval from the test set's size, {low:.3f}–{high:.3f}: the "
        "paper's figure lies outside it)" in page
    )
    # without the counts (files written before they were recorded) there is no interval
    for r in runs:
        del r["metrics"]["n_normal"]
    assert mean_interval(build_tables(runs, suite="mvtec") | {"runs": runs}, "piade") is None
