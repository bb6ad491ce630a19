"""Which image score ranks defects best? Every score kind of one trained model, on one test set.

One forward pass per test image gives the loss terms and the anomaly residuals; every score of
``piade.config.SCORE_KINDS`` is computed from them (the paper's total loss, the same with each
term divided by its mean on held-out normal images, the maximum and top-1 % mean of the smoothed
anomaly map, the top-1 % mean of the smoothed ImageNet-feature residual) and ranked by image
AUROC against the labels, and so is each of the paper's three loss terms alone and each
instantiation vector's length. The scores need no retraining: they differ only after the
network. Prints one JSON line, then a table::

    python benchmarks/image_scores.py runs/bottle --data mvtec --root ../shared/data/mvtec_ad \\
        --category bottle
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from piade.cli.args import datasets, parse_args
from piade.config import SCORE_KINDS
from piade.inference.detector import load, score_dataset
from piade.metrics import image_auroc


def score_all(model_path: str, fit_flags: list[str], batch_size: int) -> dict[str, object]:
    """AUROC of every score kind for the model at ``model_path`` on the test split of the data."""
    detector = load(model_path)
    args = parse_args(["fit", *fit_flags, "--out", "unused"])
    _, test = datasets(args, image_size=detector.image_size)
    labels = np.asarray(test.labels).astype(int)
    scored = score_dataset(detector, test, batch_size=batch_size, keep=("every_score",))
    cal = detector.calibration
    scores = {kind: scored[f"score:{kind}"] for kind in SCORE_KINDS}
    aurocs = {kind: image_auroc(labels, v) for kind, v in scores.items()}
    terms = {
        "mse": scored["mse"],
        "perceptual": scored["perceptual"],
        "1 - ssim": 1 - scored["ssim"],
    }
    lengths = np.asarray(scored["lengths"])  # (N, num_vectors)
    for j in range(lengths.shape[1]):  # is a vector's length itself a score? (Sec. 6's mechanism)
        terms[f"|v{j + 1}|"] = lengths[:, j]
    return {
        "model": model_path,
        "data": " ".join(fit_flags),
        "map_kind": cal.map_kind,
        "n_normal": int((labels == 0).sum()),
        "n_anomalous": int(labels.sum()),
        "image_auroc": aurocs,
        "term_auroc": {name: image_auroc(labels, v) for name, v in terms.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model", help="model file or piade fit output directory")
    parser.add_argument("--batch-size", type=int, default=32)
    args, data_flags = parser.parse_known_args()
    result = score_all(args.model, data_flags, args.batch_size)
    print(json.dumps(result))
    print(f"\n{result['n_normal']} normal, {result['n_anomalous']} anomalous test images")
    for kind, value in result["image_auroc"].items():  # type: ignore[attr-defined]
        print(f"{kind:<16} image AUROC {value:.4f}")
    print("each term of the paper's loss alone, and each vector's length:")
    for name, value in result["term_auroc"].items():  # type: ignore[attr-defined]
        print(f"  {name:<14} image AUROC {value:.4f}")


if __name__ == "__main__":
    main()
