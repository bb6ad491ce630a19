"""Prediction on image files: streamed in batches, one CSV row per file, anomaly maps as PNGs.

Memory stays bounded by one batch whatever the number of files; rows are written (and flushed) as
each batch finishes, so a failure later never loses the results already written. Anomaly maps are
resized to each image's own resolution.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image
from tqdm.auto import tqdm

from piade.data.decode import read_rgb, resize_image
from piade.detector import Detector
from piade.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
COLUMNS = (
    "path",
    "score",
    "normalized_score",
    "label",
    "mse",
    "perceptual",
    "ssim",
    "decoded",
    "map",
    "error",
)


@dataclass(frozen=True)
class PredictSummary:
    """What :func:`predict` did."""

    csv_path: Path
    scored: int
    anomalous: int
    failed: int


def find_images(inputs: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Image files named directly, or found (recursively, sorted) in the folders named."""
    for item in map(Path, inputs):
        if item.is_dir():
            files = (p for p in sorted(item.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES)
            yield from (p for p in files if p.is_file())
        elif item.is_file():
            yield item
        else:
            raise DataError(f"{item} does not exist; pass image files or folders of images")


def _chunks(paths: Iterator[Path], size: int) -> Iterator[list[Path]]:
    chunk: list[Path] = []
    for path in paths:
        chunk.append(path)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def save_map_png(path: Path, anomaly_map: np.ndarray, image: np.ndarray, scale: float) -> None:
    """Write the map as an overlay: the image blended with the map in the 'inferno' colours.

    The colour scale runs from 0 to ``scale`` (twice the 99th percentile of the map on held-out
    normal images), so maps of different images are comparable.
    """
    level = np.clip(anomaly_map / max(scale, 1e-12), 0, 1)
    heat = colormaps["inferno"](level)[..., :3] * 255
    blended = 0.5 * image.astype(np.float32) + 0.5 * heat
    Image.fromarray(blended.round().clip(0, 255).astype(np.uint8)).save(path)


def predict(
    detector: Detector,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 16,
    save_maps: bool = True,
    on_error: str = "skip",
) -> PredictSummary:
    """Score image files; write ``scores.csv`` (and ``maps/*.png``) into ``out_dir``."""
    out = Path(out_dir)
    maps_dir = out / "maps"
    (maps_dir if save_maps else out).mkdir(parents=True, exist_ok=True)
    files = list(find_images(inputs))
    if not files:
        raise DataError(
            f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {', '.join(map(str, inputs))}"
        )
    scale = 2 * detector.calibration.map_normal_p99
    counts = {"scored": 0, "anomalous": 0, "failed": 0}
    csv_path = out / "scores.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        bar = tqdm(total=len(files), desc="predict", unit="image", disable=None)
        for chunk in _chunks(iter(files), batch_size):
            rows = _score_chunk(
                detector,
                chunk,
                counts["scored"] + counts["failed"],
                maps_dir if save_maps else None,
                scale,
                on_error,
            )
            for row in rows:
                writer.writerow(row)
                failed = bool(row["error"])
                counts["failed" if failed else "scored"] += 1
                counts["anomalous"] += int(not failed and row["label"] == 1)
            handle.flush()
            bar.update(len(chunk))
        bar.close()
    return PredictSummary(csv_path, counts["scored"], counts["anomalous"], counts["failed"])


def _score_chunk(
    detector: Detector,
    chunk: list[Path],
    start: int,
    maps_dir: Path | None,
    scale: float,
    on_error: str,
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    images: list[np.ndarray] = []
    for path in chunk:
        try:
            images.append(read_rgb(str(path)))
            rows.append({"path": str(path), "error": ""})
        except DataError as error:
            if on_error == "raise":
                raise
            log.warning("skipping %s", error)
            rows.append({"path": str(path), "error": str(error)})
    if not images:
        return rows
    batch = torch.stack([resize_image(image, detector.image_size) for image in images])
    batch = batch.to(detector.device).float() / 255  # (B, 3, S, S) in [0, 1]
    result = detector.score(batch)
    good = [row for row in rows if not row["error"]]
    for k, (row, image) in enumerate(zip(good, images, strict=True)):
        row |= {
            name: round(float(getattr(result, name)[k]), 6)
            for name in ("score", "normalized_score", "mse", "perceptual", "ssim")
        }
        row |= {"label": int(result.label[k]), "decoded": int(result.decoded[k])}
        if maps_dir is not None:
            height, width = image.shape[:2]
            full = detector.map_at(result.anomaly_map[k : k + 1], height, width)[0]
            name = f"{start + rows.index(row):06d}_{Path(str(row['path'])).stem}.png"
            save_map_png(maps_dir / name, full.cpu().numpy(), image, scale)
            row["map"] = str(maps_dir / name)
    return rows
