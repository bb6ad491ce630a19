"""One method trained and evaluated on one class: piade, its one-vector ablation, or a baseline.

Every method sees the same training images and the same test set, and is scored by the same metric
code (:func:`piade.evaluation.compute_metrics`), so the comparisons in a benchmark table are measured.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from piade.baselines import BASELINES, build_baseline
from piade.benchmark.authors import subset_metrics
from piade.benchmark.cost import Stopwatch, device_description, peak_memory
from piade.config import DEFAULT_LOSS_CONVENTION, ModelConfig
from piade.data import ImageDataset
from piade.errors import ConfigError, printable
from piade.evaluation.evaluate import compute_metrics, dataset_masks
from piade.metrics import image_auroc
from piade.runtime import resolve_device
from piade.train.checkpoint import CHECKPOINT, METRICS
from piade.train.config import TrainConfig

log = logging.getLogger(__name__)

IMAGE_SCORES_FILE = "scores.csv"

PIADE_METHODS = ("piade", "piade-1v")  # piade-1v: one instantiation vector, no routing (Sec. 6)
METHODS = (*PIADE_METHODS, *BASELINES)
DEFAULT_EPOCHS = {"piade": 400, "ae": 200}  # the paper's Table 1; Bergmann et al. 2019
DEFAULT_BATCH = {"piade": 120, "ae": 128}


@dataclass(frozen=True, kw_only=True)
class MethodSettings:
    """Settings shared by every method of a benchmark; None means the method's own default.

    Attributes:
        image_size: piade's input side; the autoencoders take the next multiple of 16.
        center_crop: the central share of each side every method's images are cut to first.
        epochs, batch_size, lr_schedule: piade's training budget and learning rate.
        baseline_epochs: the autoencoders' epochs (OC-SVM and KDE have none).
        seed: seeds initialisation, shuffling and the COIL/folder splits.
        backbone, encoder_weights, perceptual_net, perceptual_weights, map_kind: piade's.
    """

    image_size: int
    center_crop: float = 1.0
    epochs: int | None = None
    batch_size: int | None = None
    lr_schedule: str = "constant"
    baseline_epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    backbone: str = "resnet18"
    encoder_weights: str | None = "imagenet"
    perceptual_net: str = "vgg11"
    perceptual_depth: int = 4
    perceptual_weights: str | None = "imagenet"
    loss_convention: str = DEFAULT_LOSS_CONVENTION
    map_kind: str = "ssim"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_methods(methods: list[str]) -> list[str]:
    """``methods`` without duplicates; ConfigError naming the valid ones for an unknown name."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; choose from "
            f"{','.join(METHODS)}"
        )
    return list(dict.fromkeys(methods))


def method_image_size(method: str, image_size: int) -> int:
    """The input side ``method`` runs at: piade's, or the next multiple of 16 for the autoencoders."""
    if method.startswith("ae-"):
        return 16 * math.ceil(image_size / 16)
    return image_size


def run_method(
    method: str,
    train: ImageDataset,
    test: ImageDataset,
    settings: MethodSettings,
    run_dir: Path,
    *,
    subset: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Train ``method`` on ``train``, score ``test``; returns metrics, cost and what was fitted.

    Each test image's scores are written to ``run_dir/scores.csv`` (see :func:`write_image_scores`).
    With ``subset`` (indices into ``test``: the images the authors' script scored, see
    :mod:`piade.benchmark.authors`), the metrics also hold the AUROC on those images alone.
    """
    device = resolve_device(settings.device)
    watch = Stopwatch()
    columns: dict[str, np.ndarray] = {}  # per image, beside the score: piade's terms and lengths
    with peak_memory(device) as peak:
        if method in PIADE_METHODS:
            scores, maps, fitted, columns = _run_piade(
                method, train, test, settings, run_dir, watch
            )
        else:
            scores, maps, fitted = _run_baseline(method, train, test, settings, watch)
    labels = np.asarray(test.labels, dtype=int)
    write_image_scores(run_dir / IMAGE_SCORES_FILE, test, scores, columns)
    masks = dataset_masks(test)
    metrics = compute_metrics(labels, scores, maps, masks)
    metrics["distinct_scores"] = int(np.unique(scores).size)
    if subset is not None:
        metrics["authors_subset"] = subset_metrics(labels, scores, subset, test.samples)
    epochs = fitted.get("epochs")
    trained = fitted.pop("trained_images", len(train) * (epochs if isinstance(epochs, int) else 1))
    train_seconds = fitted.pop("train_seconds", watch.seconds.get("train", 0.0))
    cost = {
        "epochs": epochs,
        "n_train": len(train),
        "n_test": len(test),
        "image_size": int(train.images.shape[-1]),
        "train_seconds": round(train_seconds, 2),
        "train_images_per_s": round(trained / train_seconds, 2)
        if trained and train_seconds
        else None,
        "infer_seconds": round(watch.seconds.get("infer", 0.0), 2),
        "infer_images_per_s": round(len(test) / max(watch.seconds.get("infer", 0.0), 1e-9), 2),
        "wall_seconds": round(train_seconds + watch.seconds.get("infer", 0.0), 2),
        **peak.as_dict(),
        **device_description(device),
    }
    return {"metrics": metrics, "cost": cost, "fitted": fitted, "warnings": score_warnings(scores)}


def write_image_scores(
    path: Path, test: ImageDataset, scores: np.ndarray, columns: dict[str, np.ndarray]
) -> None:
    """One row per test image: ``path``, ``group``, ``label`` and ``score`` (the table's), then
    ``columns`` in their order (piade: each loss term, the decoded vector, the vectors' lengths and
    every kind of image score of the same pass as ``score:KIND``), so that other scores and metrics
    can be computed later without training again. Written atomically.
    """
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "group", "label", "score", *columns])
        for i, sample in enumerate(test.samples):
            writer.writerow(
                [
                    printable(sample.source),
                    sample.group,
                    int(sample.label),
                    f"{float(scores[i]):.8g}",
                    *(f"{float(v[i]):.8g}" for v in columns.values()),
                ]
            )
    os.replace(tmp, path)


def score_warnings(scores: np.ndarray) -> list[str]:
    """What makes a method's AUROC on ``scores`` (N,) unreliable: tied scores."""
    distinct = int(np.unique(scores).size)
    if distinct == 1:
        return [
            f"all {scores.size} test scores are equal ({float(scores[0]):.4g}): the model gives every"
            " image the same score (e.g. it outputs the same image whatever the input), so its"
            " AUROC of 0.5 measures nothing; train it longer"
        ]
    if distinct < scores.size / 2:
        return [f"only {distinct} distinct scores among {scores.size} test images: ties decide"]
    return []


def _run_piade(
    method: str,
    train: ImageDataset,
    test: ImageDataset,
    settings: MethodSettings,
    run_dir: Path,
    watch: Stopwatch,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any], dict[str, np.ndarray]]:
    from piade.inference.detector import load, score_dataset
    from piade.inference.predict import length_columns
    from piade.train.run import fit

    epochs = settings.epochs or DEFAULT_EPOCHS["piade"]
    model_config = ModelConfig(
        image_size=settings.image_size,
        center_crop=settings.center_crop,
        backbone=settings.backbone,
        num_vectors=1 if method == "piade-1v" else 2,
    )
    train_config = TrainConfig(
        epochs=epochs,
        batch_size=settings.batch_size or DEFAULT_BATCH["piade"],
        lr_schedule=settings.lr_schedule,
        seed=settings.seed,
        device=settings.device,
        encoder_weights=settings.encoder_weights,
        perceptual_net=settings.perceptual_net,
        perceptual_depth=settings.perceptual_depth,
        perceptual_weights=settings.perceptual_weights,
        loss_convention=settings.loss_convention,
        map_kind=settings.map_kind,
        score_kind="loss",  # the paper's tables use the paper's score
        checkpoint_every=max(1, epochs // 20),
    )
    fit_dir = run_dir / "fit"
    resume = (fit_dir / CHECKPOINT).is_file()
    with watch("train"):
        result = fit(
            train,
            fit_dir,
            model_config=model_config,
            train_config=train_config,
            data_info={"description": f"benchmark {run_dir}"},
            resume=resume,
        )
    detector = load(result.model_path, device=settings.device)
    keep = ("every_score", "anomaly_map") if test.has_masks else ("every_score",)
    with watch("infer"):
        scored = score_dataset(detector, test, keep=keep)
    labels = np.asarray(test.labels).astype(int)
    records = [json.loads(line) for line in (fit_dir / METRICS).read_text().splitlines() if line]
    fitted = {
        "epochs": epochs,
        "num_vectors": model_config.num_vectors,
        "batch_size": train_config.batch_size,
        "final_loss": records[-1]["loss"] if records else None,
        "model_file": str(result.model_path),
        "resumed": resume,
        "trained_images": sum(r["images"] for r in records),
        "train_seconds": sum(r["seconds"] for r in records),
        # beyond the paper: every image score of the same model and pass (docs/engine.md)
        "image_auroc_by_score": {
            k.removeprefix("score:"): image_auroc(labels, v)
            for k, v in scored.items()
            if k.startswith("score:") and 0 < labels.sum() < labels.size
        },
    }
    columns = {
        "mse": scored["mse"],
        "perceptual": scored["perceptual"],
        "ssim": scored["ssim"],
        "decoded": scored["decoded"],
        **{
            name: scored["lengths"][:, j]
            for j, name in enumerate(length_columns(scored["lengths"].shape[1]))
        },
        **{k: v for k, v in scored.items() if k.startswith("score:")},
    }
    return scored["score"], scored.get("anomaly_map"), fitted, columns


def _run_baseline(
    method: str,
    train: ImageDataset,
    test: ImageDataset,
    settings: MethodSettings,
    watch: Stopwatch,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    is_ae = method.startswith("ae-")
    baseline = build_baseline(
        method,
        image_size=int(train.images.shape[-1]),
        epochs=settings.baseline_epochs or DEFAULT_EPOCHS["ae"],
        batch_size=DEFAULT_BATCH["ae"],
        seed=settings.seed,
        device=settings.device,
    )
    with watch("train"):
        fitted = dict(baseline.fit(train.images))
    with watch("infer"):
        result = baseline.score(test.images)
    if not is_ae:
        fitted.pop("epochs", None)
    return result.scores, result.maps, fitted
