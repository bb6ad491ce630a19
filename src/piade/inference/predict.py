"""Prediction on image files: streamed in batches, one CSV row per file, anomaly maps as images.

Memory stays bounded by two batches (one scored, one read ahead) whatever the number of files;
rows are written (and flushed) as each batch finishes, so a failure later never loses the results
already written. Progress is shown as a bar on a terminal and as a log line every tenth of the
files. Folders are searched recursively; hidden files and folders (``.git``, ``._x.png``,
``.ipynb_checkpoints``) are left out, and a link with an image name that leads nowhere is reported
like an unreadable file.
Each batch of files is decoded and resized on a worker thread while the batch before it is
scored. Anomaly maps are resized to each image's own resolution and written by
:class:`~piade.inference.maps.MapWriter`'s threads while the next batch is scored.

The detector is a :class:`~piade.inference.detector.Detector` (a model file, run with PyTorch) or
an :class:`~piade.inference.portable.OnnxDetector` (an exported file, run with ONNX Runtime); this
module imports torch only for the former.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np
from tqdm.auto import tqdm

from piade.config import MAP_FORMATS, MAP_STYLES
from piade.data.common import IMAGE_EXTENSIONS, is_image_file
from piade.data.decode import read_rgb
from piade.errors import DataError, printable
from piade.inference.maps import MapWriter

if TYPE_CHECKING:
    from piade.inference.detector import Detector
    from piade.inference.portable import OnnxDetector

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = IMAGE_EXTENSIONS
PROGRESS_STEPS = 10  # log lines per run
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
)  # and after "decoded", one length_j column per instantiation vector (length_columns)


class Scorer(Protocol):
    """What :func:`predict` and ``piade serve`` need of a detector, in NumPy
    (:class:`OnnxDetector` has it; :class:`TorchScorer` gives it to a model file's detector)."""

    image_size: int
    num_vectors: int
    map_scale: float  # the maps' colour scale
    calibration: dict[str, Any]  # the fields of piade.inference.calibration.Calibration

    def score(self, images: np.ndarray) -> dict[str, np.ndarray]: ...
    def resize(self, rgb: np.ndarray) -> np.ndarray: ...
    def map_at(self, anomaly_map: np.ndarray, height: int, width: int) -> np.ndarray:
        """The map laid on an image of (height, width): resized to the part the model saw (the
        whole image, or its central crop), zeros elsewhere."""
        ...

    def about(self) -> dict[str, Any]: ...


def as_scorer(detector: Detector | OnnxDetector) -> Scorer:
    """``detector`` as a :class:`Scorer` (an :class:`OnnxDetector` is one already)."""
    if all(hasattr(detector, name) for name in ("resize", "map_scale", "about")):
        return cast(Scorer, detector)
    return TorchScorer(cast("Detector", detector))


class TorchScorer:
    """A :class:`~piade.inference.detector.Detector` seen as a :class:`Scorer`."""

    def __init__(self, detector: Detector) -> None:
        self.detector = detector
        self.image_size = detector.image_size
        self.num_vectors = detector.config.num_vectors
        self.map_scale = 2 * detector.calibration.map_normal_p99
        self.calibration = dataclasses.asdict(detector.calibration)

    def score(self, images: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        batch = torch.from_numpy(images).to(self.detector.device)
        return {k: v.cpu().numpy() for k, v in self.detector.score(batch)._asdict().items()}

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        from piade.data.decode import resize_image

        return resize_image(rgb, self.image_size, self.detector.config.center_crop).numpy()

    def map_at(self, anomaly_map: np.ndarray, height: int, width: int) -> np.ndarray:
        import torch

        from piade.data.decode import center_box, place_in_box

        box = center_box(height, width, self.detector.config.center_crop)
        inner = self.detector.map_at(
            torch.from_numpy(anomaly_map)[None], box[2] - box[0], box[3] - box[1]
        )
        return place_in_box(inner[0].numpy(), height, width, box)

    def about(self) -> dict[str, Any]:
        """The network, data and training as the model file records them, and how it runs."""
        detector = self.detector
        training = detector.info.get("training", {})  # as fit recorded it
        return {
            "config": detector.config.to_dict(),
            "data": training.get("data"),
            "training": training.get("train"),
            "loss": detector.info.get("loss"),
            "runtime": "torch",
            "device": str(detector.device),
            "precision": detector.precision,
        }


def length_columns(num_vectors: int) -> list[str]:
    """The CSV columns of the instantiation vectors' lengths: ``length_1`` … ``length_J``."""
    return [f"length_{j + 1}" for j in range(num_vectors)]


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
            for path in sorted(item.rglob("*")):  # does not follow links to folders: no loops
                hidden = any(part.startswith(".") for part in path.relative_to(item).parts)
                if not hidden and is_image_file(path):
                    yield path
        elif item.is_file() or item.is_symlink():
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


def predict(
    detector: Detector | OnnxDetector,
    inputs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    batch_size: int = 16,
    maps: str = "overlay",
    map_format: str = "png",
    on_error: str = "skip",
) -> PredictSummary:
    """Score image files; write ``scores.csv`` (and ``maps/*.png`` or ``*.jpg``) into ``out_dir``.

    ``maps`` (:data:`MAP_STYLES`): ``overlay`` blends each map with its image, ``heatmap`` writes
    the map alone, ``none`` writes no maps (and skips computing them at full resolution).
    ``map_format`` (:data:`MAP_FORMATS`): lossless PNG, or JPEG, much cheaper to write
    (docs/performance.md). ``detector`` is a :class:`~piade.inference.detector.Detector` or an
    :class:`~piade.inference.portable.OnnxDetector`.
    """
    if maps not in MAP_STYLES:
        raise DataError(f"maps={maps!r}: use one of {', '.join(MAP_STYLES)}")
    if map_format not in MAP_FORMATS:
        raise DataError(f"map_format={map_format!r}: use one of {', '.join(MAP_FORMATS)}")
    out = Path(out_dir)
    maps_dir = None if maps == "none" else out / "maps"
    (maps_dir or out).mkdir(parents=True, exist_ok=True)
    files = list(find_images(inputs))
    if not files:
        raise DataError(
            f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in "
            f"{', '.join(map(str, inputs))}; pass image files or folders that hold some"
        )
    scorer = as_scorer(detector)
    counts = {"scored": 0, "anomalous": 0, "failed": 0}
    csv_path = out / "scores.csv"
    progress = _Progress(len(files))
    writer_pool = MapWriter(maps_dir, maps, scorer.map_scale, map_format)
    with csv_path.open("w", newline="", encoding="utf-8") as handle, closing(writer_pool):
        at = COLUMNS.index("decoded") + 1
        lengths = length_columns(scorer.num_vectors)
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS[:at], *lengths, *COLUMNS[at:]])
        writer.writeheader()
        pool = writer_pool if maps_dir is not None else None
        for chunk, decoded in _decoded_ahead(scorer, files, batch_size, pool is not None, on_error):
            done = counts["scored"] + counts["failed"]
            for row in _score_chunk(scorer, decoded, done, pool):
                writer.writerow(
                    {k: printable(v) if isinstance(v, str) else v for k, v in row.items()}
                )
                failed = bool(row["error"])
                counts["failed" if failed else "scored"] += 1
                counts["anomalous"] += int(not failed and row["label"] == 1)
            handle.flush()
            writer_pool.end_batch()
            progress.update(len(chunk), counts["failed"])
        progress.close()
    return PredictSummary(csv_path, counts["scored"], counts["anomalous"], counts["failed"])


class _Progress:
    """A bar on a terminal, and a log line every tenth of the files (for logs and pipes)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.step = max(1, -(-total // PROGRESS_STEPS))  # ceil(total / PROGRESS_STEPS)
        self.bar = tqdm(total=total, desc="predict", unit="image", disable=None)

    def update(self, n: int, failed: int) -> None:
        before, self.done = self.done, self.done + n
        self.bar.update(n)
        if self.done // self.step > before // self.step or self.done == self.total:
            log.info("%d/%d images done, %d unreadable", self.done, self.total, failed)

    def close(self) -> None:
        self.bar.close()


@dataclass
class _Decoded:
    """One batch of files read: a row per file (its error, if unreadable), the images resized to
    the model's size, and the originals (kept only to draw the maps)."""

    rows: list[dict[str, object]]
    resized: list[np.ndarray]  # uint8 (3, S, S)
    originals: list[np.ndarray]


def _decoded_ahead(
    scorer: Scorer, files: list[Path], batch_size: int, keep: bool, on_error: str
) -> Iterator[tuple[list[Path], _Decoded]]:
    """Batches of files, each decoded and resized on a worker thread while the one before it is
    scored (Pillow and torch release the GIL there), so decoding overlaps with the network."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="piade-decode") as reader:
        chunks = _chunks(iter(files), batch_size)
        chunk = next(chunks, None)
        ahead = reader.submit(_decode_chunk, scorer, chunk, keep, on_error) if chunk else None
        while chunk is not None and ahead is not None:
            decoded = ahead.result()
            following = next(chunks, None)
            ahead = (
                reader.submit(_decode_chunk, scorer, following, keep, on_error)
                if following
                else None
            )
            yield chunk, decoded
            chunk = following


def _decode_chunk(scorer: Scorer, chunk: list[Path], keep: bool, on_error: str) -> _Decoded:
    """Read and resize one batch of files; unreadable ones get a row with the reason."""
    decoded = _Decoded([], [], [])
    for path in chunk:
        try:
            image = read_rgb(str(path))
        except DataError as error:
            if on_error == "raise":
                raise
            log.warning("%s (recorded in scores.csv)", printable(str(error)))
            decoded.rows.append({"path": str(path), "error": str(error)})
            continue
        decoded.rows.append({"path": str(path), "error": ""})
        decoded.resized.append(scorer.resize(image))
        if keep:
            decoded.originals.append(image)
    return decoded


def _score_chunk(
    scorer: Scorer, decoded: _Decoded, start: int, maps: MapWriter | None
) -> list[dict[str, object]]:
    """Rows for one batch of files: scores, or the reason a file could not be read."""
    rows, resized, originals = decoded.rows, decoded.resized, decoded.originals
    if not resized:
        return rows
    batch = np.stack(resized).astype(np.float32) / 255  # (B, 3, S, S) in [0, 1]
    result: dict[str, Any] = scorer.score(batch)
    good = [(i, row) for i, row in enumerate(rows) if not row["error"]]
    for k, (i, row) in enumerate(good):
        row |= {
            name: round(float(result[name][k]), 6)
            for name in ("score", "normalized_score", "mse", "perceptual", "ssim")
        }
        row |= {"label": int(result["label"][k]), "decoded": int(result["decoded"][k])}
        names = length_columns(result["lengths"].shape[1])
        lengths = result["lengths"][k]
        row |= {name: round(float(v), 6) for name, v in zip(names, lengths, strict=True)}
        if maps is not None:
            image = originals[k]
            height, width = image.shape[:2]
            full = scorer.map_at(result["anomaly_map"][k], height, width)
            stem = f"{start + i:06d}_{Path(str(row['path'])).stem}"
            row["map"] = maps.submit(stem, full, image)
    return rows
