"""Which anomaly map locates defects best? Pixel AUROC and AUPRO of every map kind, one model.

Scores the test split of an MVTec-layout category with a trained model (``piade fit`` output) and
compares the per-pixel maps of :mod:`piade.inference.scoring` — ``ssim`` (1 − SSIM), ``perceptual``
(upsampled VGG feature residual), ``mse`` and ``combined`` (ssim and perceptual, each divided by its
mean on held-out normal images) — on the ground-truth masks, each unsmoothed and smoothed with every σ of ``--sigmas`` (pixels;
``piade fit`` smooths with σ = size / 30 by default). All come from the same scoring pass, so the
comparison is paired.

    python benchmarks/anomaly_maps.py --model RUN_DIR --root ../shared/data/mvtec_ad --category bottle
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from piade.data import build_datasets
from piade.inference.detector import load
from piade.inference.scoring import MAP_KINDS, anomaly_map, score_images
from piade.metrics import aupro, image_auroc, pixel_auroc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="model file or 'piade fit' run directory")
    parser.add_argument("--root", required=True, help="MVTec AD root folder")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--sigmas", default="0,1,2,4", help="comma list of smoothing σ in pixels (0: none)"
    )
    args = parser.parse_args()
    sigmas = [float(s) for s in args.sigmas.split(",")]
    variants = [(kind, sigma) for kind in MAP_KINDS for sigma in sigmas]

    tic = time.perf_counter()
    detector = load(args.model)
    _, test = build_datasets(
        "mvtec",
        args.root,
        args.category,
        image_size=detector.image_size,
        center_crop=detector.config.center_crop,
    )
    maps: dict[tuple[str, float], list[np.ndarray]] = {v: [] for v in variants}
    scores = []
    for batch in test.images.split(args.batch_size):
        raw = score_images(detector.model, detector.criterion, batch.float() / 255)
        scores.append(raw.terms.total.numpy())
        for kind, sigma in variants:
            heat = anomaly_map(raw.residuals, kind, detector.calibration.map_scales, sigma)
            maps[kind, sigma].append(heat.numpy())
    masks = test.masks[:, 0].numpy() > 0
    labels = np.asarray(test.labels)
    rows = []
    for kind, sigma in variants:
        stacked = np.concatenate(maps[kind, sigma])
        rows.append(
            {
                "map": kind,
                "sigma": sigma,
                "pixel_auroc": pixel_auroc(masks, stacked),
                "aupro": aupro(masks, stacked),
                "image_auroc_of_map_max": image_auroc(
                    labels, stacked.reshape(len(stacked), -1).max(1)
                ),
            }
        )
    print(
        f"{args.category}: {len(labels)} test images, {int(labels.sum())} anomalous, "
        f"{int(masks.any(axis=(1, 2)).sum())} with masks; paper score image AUROC "
        f"{image_auroc(labels, np.concatenate(scores)):.4f}; model {args.model}"
    )
    print(f"{'map':12s} {'σ':>4s} {'pixel AUROC':>12s} {'AUPRO':>8s} {'img AUROC (map max)':>20s}")
    for row in rows:
        print(
            f"{row['map']:12s} {row['sigma']:4g} {row['pixel_auroc']:12.4f} {row['aupro']:8.4f} "
            f"{row['image_auroc_of_map_max']:20.4f}"
        )
    for row in rows:
        print(json.dumps(row))
    print(f"({time.perf_counter() - tic:.1f} s, torch {torch.__version__})")


if __name__ == "__main__":
    main()
