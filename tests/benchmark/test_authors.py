"""The authors' evaluation subset: which test images their script scored, and its table."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from piade.benchmark.authors import authors_subset, subset_metrics
from piade.benchmark.tables import build_tables, write_tables
from piade.data.common import Sample
from piade.metrics import image_auroc


def _bottle_test_split(shuffle_seed: int) -> list[Sample]:
    """MVTec bottle's test split as its folders hold it, listed in a scrambled order."""
    folders = {"good": 20, "broken_large": 20, "broken_small": 22, "contamination": 21}
    samples = [
        Sample(f"/d/bottle/test/{group}/{i:03d}.png", label=int(group != "good"), group=group)
        for group, count in folders.items()
        for i in range(count)
    ]
    random.Random(shuffle_seed).shuffle(samples)
    return samples


@pytest.mark.parametrize("shuffle_seed", [0, 1])
def test_the_subset_is_good_and_broken_large_000_to_014_in_any_listing_order(
    shuffle_seed: int,
) -> None:
    samples = _bottle_test_split(shuffle_seed)
    subset = authors_subset("mvtec", samples)
    assert subset is not None and subset == sorted(subset)
    chosen = sorted(f"{samples[i].group}/{Path(samples[i].source).name}" for i in subset)
    assert chosen == sorted(
        [f"good/{i:03d}.png" for i in range(15)] + [f"broken_large/{i:03d}.png" for i in range(15)]
    )


def test_the_subset_exists_only_where_the_authors_script_does() -> None:
    samples = _bottle_test_split(0)
    assert authors_subset("coil100", samples) is None and authors_subset("cifar10", samples) is None
    assert authors_subset("mvtec", [s for s in samples if s.label == 0]) is None
    small = [s for s in samples if s.group == "good" or s.source.endswith(("/000.png", "/001.png"))]
    assert len(authors_subset("mvtec", small) or []) == 15 + 3 * 2  # fewer than 15: all of them


def test_subset_metrics_score_only_the_chosen_images() -> None:
    samples = _bottle_test_split(0)
    labels = np.array([s.label for s in samples])
    # broken_large scores high, the other defects as low as the good images
    scores = np.array([1.0 if s.group == "broken_large" else 0.0 for s in samples])
    scores += np.random.default_rng(0).uniform(0, 0.5, len(samples))
    subset = authors_subset("mvtec", samples)
    assert subset is not None
    metrics = subset_metrics(labels, scores, subset, samples)
    assert metrics["image_auroc"] == 1.0 and image_auroc(labels, scores) < 0.8
    assert (metrics["n_normal"], metrics["n_anomalous"]) == (15, 15)
    assert metrics["groups"] == {"broken_large": 15, "good": 15}


def _run(method: str, seed: int, whole: float, subset: float | None) -> dict[str, Any]:
    metrics: dict[str, Any] = {"image_auroc": whole, "pixel_auroc": None, "aupro": None}
    if subset is not None:
        groups = {"broken_large": 15, "good": 15}
        metrics["authors_subset"] = {"image_auroc": subset, "groups": groups}
    cost = {"epochs": 1, "image_size": 32, "n_train": 4, "train_seconds": 1.0,
            "train_images_per_s": 4.0, "infer_images_per_s": 8.0, "peak_rss_mb": 100.0,
            "peak_cuda_mb": None, "device_name": "test cpu"}  # fmt: skip
    return {"suite": "mvtec", "class": "bottle", "method": method, "seed": seed,
            "metrics": metrics, "cost": cost, "settings": {"encoder_weights": None}}  # fmt: skip


def test_the_table_averages_seeds_and_skips_runs_without_the_subset(tmp_path: Path) -> None:
    results = [
        _run("piade", 0, 0.93, 0.99),
        _run("piade", 1, 0.95, 0.97),
        _run("ocsvm", 0, 0.6, None),
    ]
    (row,) = build_tables(results, suite="mvtec")["authors"]
    assert row["method"] == "piade" and row["seeds"] == 2 and row["paper"] == 0.968
    assert row["whole"] == pytest.approx(0.94) and row["subset"] == pytest.approx(0.98)
    write_tables(tmp_path, results, suite="mvtec")
    page = (tmp_path / "results.md").read_text()
    assert "| bottle | piade | 2 | 0.940 | **0.980** | 15 broken_large, 15 good | 0.968 |" in page
    write_tables(tmp_path, [_run("piade", 0, 0.9, None)], suite="mvtec")
    assert "authors' evaluation subset" not in (tmp_path / "results.md").read_text()
