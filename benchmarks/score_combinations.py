"""Would a combination of image scores rank anomalies better than each score alone?

Reads the ``scores.csv`` that ``piade benchmark`` writes for every run (one row per test image:
the loss terms and every score kind of the same scoring pass) and prints the image AUROC, per
class and as a mean, of every stored score kind and of products of them. A product needs no
calibration: multiplying one factor by a constant does not change the ranking, so each factor
counts by how many times larger than usual it is, whatever its units. Nothing is retrained or
rescored, so the figures are those of the benchmark's own models::

    python benchmarks/score_combinations.py runs/bench-coil runs/bench-bottle

Prints one JSON line per benchmark directory, then a table per directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from piade.config import SCORE_KINDS
from piade.metrics import image_auroc

Columns = dict[str, np.ndarray]


def _product(*names: str) -> Callable[[Columns], np.ndarray]:
    def score(c: Columns) -> np.ndarray:
        return np.prod([c[n] for n in names], axis=0)

    return score


COMBINATIONS: dict[str, Callable[[Columns], np.ndarray]] = {
    "mse x perceptual x (1-ssim)": _product("mse", "perceptual", "1-ssim"),
    "loss-balanced x map-max": _product("score:loss-balanced", "score:map-max"),
    "loss-balanced x map-top1": _product("score:loss-balanced", "score:map-top1"),
    "mse x perceptual x (1-ssim) x map-max": _product(
        "mse", "perceptual", "1-ssim", "score:map-max"
    ),
    "mse x (1-ssim) x map-max": _product("mse", "1-ssim", "score:map-max"),
}


def read_scores(path: Path) -> tuple[np.ndarray, Columns]:
    """The labels (N,) and every numeric column of one run's ``scores.csv``."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = np.array([int(r["label"]) for r in rows])
    numeric = [k for k in rows[0] if k not in ("path", "group", "label")]
    columns = {k: np.array([float(r[k]) for r in rows]) for k in numeric}
    columns["1-ssim"] = 1 - columns["ssim"]
    return labels, columns


def aurocs_of(path: Path) -> dict[str, float]:
    labels, columns = read_scores(path)
    kinds = {k: columns[f"score:{k}"] for k in SCORE_KINDS if f"score:{k}" in columns}
    kinds |= {name: combine(columns) for name, combine in COMBINATIONS.items()}
    return {name: image_auroc(labels, values) for name, values in kinds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("benchmarks", nargs="+", type=Path, help="piade benchmark --out folders")
    parser.add_argument("--method", default="piade", help="the method's runs to read")
    args = parser.parse_args()
    for root in args.benchmarks:
        files = sorted(root.glob(f"runs/{args.method}/*/seed*/scores.csv"))
        if not files:
            raise SystemExit(
                f"{root}: no runs/{args.method}/*/seed*/scores.csv; run piade benchmark"
            )
        per_class = {f.parent.parent.name + "/" + f.parent.name: aurocs_of(f) for f in files}
        names = list(next(iter(per_class.values())))
        mean = {n: statistics.fmean(r[n] for r in per_class.values()) for n in names}
        print(json.dumps({"benchmark": str(root), "classes": per_class, "mean": mean}))
        width = max(len(n) for n in names)
        print(f"\n{root} ({len(files)} runs): image AUROC")
        print(f"{'score':<{width}}  mean    min    classes")
        for n in names:
            values = [r[n] for r in per_class.values()]
            print(
                f"{n:<{width}}  {mean[n]:.3f}  {min(values):.3f}  "
                + " ".join(f"{v:.3f}" for v in values)
            )


if __name__ == "__main__":
    main()
