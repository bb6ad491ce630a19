"""Batch-norm statistics after training: the running averages against exact ones, on one model.

Loads a model file written without the precise pass (``piade fit --precise-bn off``),
scores the test split, then recomputes every batch norm's statistics on the training images
exactly as ``piade fit`` does after its last epoch
(``piade.train.loop.precise_batch_norm`` on the same held-out split, in batches of ``--batch-size``)
and scores again. Prints one JSON line per state::

    python benchmarks/precise_bn.py runs/bottle --batch-size 120 \\
        --data mvtec --root ../shared/data/mvtec_ad --category bottle
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from piade.cli.args import datasets, parse_args
from piade.data.dataset import ImageSet, stack_images
from piade.evaluation.evaluate import compute_metrics, dataset_masks
from piade.inference.detector import Detector, load, score_dataset
from piade.train.loop import precise_batch_norm, split_calibration


def test_metrics(detector: Detector, test: ImageSet) -> dict[str, object]:
    scored = score_dataset(detector, test, keep=("anomaly_map",))
    labels = np.asarray(getattr(test, "labels")).astype(int)  # noqa: B009
    metrics = compute_metrics(labels, scored["score"], scored["anomaly_map"], dataset_masks(test))
    return metrics | {"normal_test_mse": float(scored["mse"][labels == 0].mean())}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model", help="model file or piade fit output directory")
    parser.add_argument("--batch-size", type=int, default=120, help="the training batch size")
    parser.add_argument("--calibration-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args, data_flags = parser.parse_known_args()
    detector = load(args.model)
    data = parse_args(["fit", *data_flags, "--out", "unused"])
    crop = detector.config.center_crop
    train, test = datasets(data, image_size=detector.image_size, center_crop=crop)
    print(json.dumps({"statistics": "running averages", **test_metrics(detector, test)}))
    images = stack_images(train)
    fit_idx, _ = split_calibration(len(images), args.calibration_fraction, args.seed)
    precise_batch_norm(detector.model, images[fit_idx], batch_size=args.batch_size)
    detector.model.eval()
    print(json.dumps({"statistics": "exact (precise BN)", **test_metrics(detector, test)}))


if __name__ == "__main__":
    main()
