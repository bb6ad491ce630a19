"""Evaluation: score a labelled test set, compute the metrics, write metrics.json and a report."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from piade.data.dataset import ImageSet, stack_images
from piade.errors import ConfigError, printable
from piade.evaluation.report import ReportData, write_report
from piade.inference.detector import Detector, score_dataset
from piade.inference.predict import length_columns
from piade.metrics import (
    aupro,
    f1_max,
    group_statistics,
    image_auroc,
    image_auroc_interval,
    pixel_auroc,
    vector_statistics,
)

log = logging.getLogger(__name__)


def dataset_masks(dataset: ImageSet) -> np.ndarray | None:
    """Ground-truth masks (N, H, W) bool when the data set has any, else None."""
    samples = getattr(dataset, "samples", [])
    if not any(getattr(s, "mask", None) or getattr(s, "mask_path", None) for s in samples):
        return None
    masks = getattr(dataset, "masks", None)
    if isinstance(masks, torch.Tensor):
        return masks.reshape(len(dataset), *masks.shape[-2:]).numpy() > 0
    return np.stack([dataset[i]["mask"][0].numpy() > 0.5 for i in range(len(dataset))])


def compute_metrics(
    labels: np.ndarray, scores: np.ndarray, maps: np.ndarray | None, masks: np.ndarray | None
) -> dict[str, Any]:
    """Image AUROC with its 95 % interval (DeLong's, with two or more images of each class), F1-max,
    and (with masks and both classes) pixel AUROC and AUPRO."""
    both = 0 < labels.sum() < len(labels)
    n_normal, n_anomalous = int((labels == 0).sum()), int((labels == 1).sum())
    metrics: dict[str, Any] = {
        "n_normal": n_normal,
        "n_anomalous": n_anomalous,
        "image_auroc": image_auroc(labels, scores) if both else None,
        "image_auroc_interval": list(image_auroc_interval(labels, scores))
        if min(n_normal, n_anomalous) >= 2
        else None,
        "f1_max": f1_max(labels, scores)[0] if both else None,
        "pixel_auroc": None,
        "aupro": None,
    }
    if masks is not None and maps is not None and masks.any() and not masks.all():
        metrics["pixel_auroc"] = pixel_auroc(masks, maps)
        metrics["aupro"] = aupro(masks, maps)
    return metrics


def evaluate(
    detector: Detector,
    test_set: ImageSet,
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 32,
    title: str = "piade evaluation",
    model_path: str = "",
) -> dict[str, Any]:
    """Score ``test_set`` (items need ``label``), write ``metrics.json``, ``scores.csv``, a report."""
    crop = getattr(test_set, "center_crop", 1.0)
    if crop != detector.config.center_crop:
        raise ConfigError(
            f"test_set: its images were cut to the central {crop:g} of each side but the model"
            f" was trained on the central {detector.config.center_crop:g}; build the test set with"
            f" center_crop={detector.config.center_crop:g}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scored = score_dataset(
        detector, test_set, batch_size=batch_size, keep=("anomaly_map", "reconstruction")
    )
    labels = np.asarray(
        getattr(test_set, "labels", None)
        if hasattr(test_set, "labels")
        else [test_set[i]["label"] for i in range(len(test_set))]
    ).astype(int)
    masks = dataset_masks(test_set)
    cal = detector.calibration
    metrics: dict[str, Any] = compute_metrics(labels, scored["score"], scored["anomaly_map"], masks)
    predicted = scored["score"] > cal.threshold
    groups = [str(getattr(s, "group", "")) for s in getattr(test_set, "samples", [])] or None
    metrics |= {
        "threshold": cal.threshold,
        "threshold_method": cal.threshold_method,
        "accuracy_at_threshold": float((predicted == labels.astype(bool)).mean()),
        "map_kind": cal.map_kind,
        "score_kind": cal.score_kind,
        "model": model_path,
        "image_size": detector.image_size,
        "center_crop": detector.config.center_crop,
        "vectors": vector_statistics(scored["lengths"], scored["decoded"], labels),
        # per defect type (or class): how many are flagged, and each one's AUROC
        "groups": group_statistics(labels, scored["score"], groups, cal.threshold)
        if groups is not None and any(groups)
        else None,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    paths = _paths(test_set)
    _write_scores(out / "scores.csv", paths, labels, scored)
    images = stack_images(test_set).permute(0, 2, 3, 1).numpy()
    reconstructions = (scored["reconstruction"].transpose(0, 2, 3, 1) * 255).round().clip(0, 255)
    data = ReportData(
        images=images,
        reconstructions=reconstructions.astype(np.uint8),
        anomaly_maps=scored["anomaly_map"],
        labels=labels,
        scores=scored["score"],
        threshold=cal.threshold,
        lengths=scored["lengths"],
        decoded=scored["decoded"],
        paths=paths,
        masks=masks,
        groups=groups,
    )
    metrics["report"] = str(write_report(out, data, metrics=_printable(metrics), title=title))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _paths(dataset: ImageSet) -> list[str]:
    """Each image's path as text that can be written (non-UTF-8 name bytes shown as ``\\xNN``)."""
    samples = getattr(dataset, "samples", None)
    if samples is not None:
        return [printable(str(getattr(s, "source", getattr(s, "path", "")))) for s in samples]
    return [printable(str(dataset[i]["path"])) for i in range(len(dataset))]


def _write_scores(
    path: Path, paths: list[str], labels: np.ndarray, scored: dict[str, np.ndarray]
) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "path",
                "label",
                "score",
                "normalized_score",
                "predicted",
                "mse",
                "perceptual",
                "ssim",
                "decoded",
                *length_columns(scored["lengths"].shape[1]),
            ]
        )
        for i, p in enumerate(paths):
            writer.writerow(
                [
                    p,
                    int(labels[i]),
                    f"{scored['score'][i]:.6g}",
                    f"{scored['normalized_score'][i]:.6g}",
                    int(scored["label"][i]),
                    f"{scored['mse'][i]:.6g}",
                    f"{scored['perceptual'][i]:.6g}",
                    f"{scored['ssim'][i]:.6g}",
                    int(scored["decoded"][i]),
                    *(f"{length:.6g}" for length in scored["lengths"][i]),
                ]
            )


def _printable(metrics: dict[str, Any]) -> dict[str, float | int | str | None]:
    shown: dict[str, float | int | str | None] = {}
    for key, value in metrics.items():
        if value is None or isinstance(value, float | int | str):
            shown[key] = value
        if key == "image_auroc" and metrics.get("image_auroc_interval"):
            low, high = metrics["image_auroc_interval"]
            shown["image_auroc 95 % interval (DeLong)"] = f"{low:.4f} – {high:.4f}"
    return shown
