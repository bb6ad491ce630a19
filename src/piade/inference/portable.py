"""A detector exported to ONNX (``piade export``), run with ONNX Runtime, NumPy and Pillow: no torch.

:class:`OnnxDetector` reads the graph and the metadata :func:`piade.inference.export.export_onnx`
stores beside it (input size, calibration), so ``piade predict model.onnx`` scores, labels and draws
maps like the model file it came from. Deployed next to a line, it starts in a fraction of the time
(importing torch alone takes about 2 s on two cores; docs/performance.md) and scores a single image
faster than eager PyTorch.

Images are resized as :func:`piade.data.decode.resize_image` resizes them (antialiased bilinear,
rounded to 8 bits), with Pillow's float resampling: on a 256 px MVTec image resized to 120 px, 2 in
100 000 values differ by one grey level, from rounding.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from piade.data.decode import center_box, place_in_box
from piade.errors import ConfigError, PiadeError

METADATA_KEY = "piade"  # the metadata entry of an exported file: the JSON of export_metadata
METADATA_FORMAT = 1  # bumped when a runtime could misread an older file's metadata
OUTPUTS = (
    "reconstruction",
    "score",
    "anomaly_map",
    "mse",
    "perceptual",
    "ssim",
    "lengths",
    "decoded",
)


class OnnxFileError(PiadeError, ValueError):
    """An ONNX file that is missing, unreadable, or not written by ``piade export``."""


def is_onnx_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an ONNX file (by its suffix), which ``piade predict`` runs without torch."""
    return Path(path).suffix.lower() == ".onnx"


class OnnxDetector:
    """An exported detector: scores images (B, 3, S, S) in [0, 1] with ONNX Runtime on the CPU.

    It offers what :func:`piade.inference.predict.predict` needs, in NumPy: :meth:`score`,
    :meth:`resize` and :meth:`map_at`, :attr:`image_size`, :attr:`num_vectors` and :attr:`map_scale`.
    """

    def __init__(self, session: Any, metadata: dict[str, Any]) -> None:
        self.session = session
        self.metadata = metadata
        self.image_size = int(metadata["image_size"])
        self.num_vectors = int(metadata["num_vectors"])
        self.calibration = dict(metadata["calibration"])
        self.threshold = float(self.calibration["threshold"])
        self.map_scale = 2 * float(self.calibration["map_normal_p99"])  # the maps' colour scale
        self.center_crop = float(metadata.get("preprocessing", {}).get("center_crop", 1.0))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, threads: int = 0) -> OnnxDetector:
        """Open an ONNX file written by ``piade export``; ``threads`` 0 lets ONNX Runtime choose."""
        try:
            import onnxruntime
        except ImportError as error:
            raise ConfigError(
                f"{path}: running an ONNX model needs ONNX Runtime: pip install 'piade[onnx]'"
            ) from error
        path = Path(path)
        if not path.is_file():
            raise OnnxFileError(
                f"ONNX file {path} does not exist; pass a file 'piade export' wrote"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
        try:
            session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ONNX Runtime raises its own types for malformed files
            raise OnnxFileError(
                f"{path} is not an ONNX model ONNX Runtime can load ({type(error).__name__}: "
                f"{' '.join(str(error).split())[:200]}); export it again with 'piade export'"
            ) from error
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        outputs = {o.name for o in session.get_outputs()}
        try:
            metadata = json.loads(text) if text else None
        except json.JSONDecodeError:
            metadata = None
        if (
            not isinstance(metadata, dict)
            or metadata.get("format") != METADATA_FORMAT
            or not set(OUTPUTS) <= outputs
        ):
            raise OnnxFileError(
                f"{path} was not written by this version of 'piade export' (its scoring outputs "
                "or its calibration are missing); export the model file again with "
                "'piade export MODEL --out FILE.onnx'"
            )
        return cls(session, metadata)

    def about(self) -> dict[str, Any]:
        """The network, data and training as the exported file records them, and how it runs."""
        meta = self.metadata
        return {
            "config": meta.get("model"),
            "data": meta.get("data"),
            "training": meta.get("training"),
            "loss": meta.get("loss"),
            "runtime": "onnxruntime",
            "device": "cpu",
            "precision": "fp32",
        }

    def score(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Every output of the graph for images (B, 3, S, S) float32 in [0, 1], plus
        ``normalized_score`` (a z-score against held-out normal images) and ``label`` (1 above the
        threshold), as :meth:`piade.Detector.score` gives them."""
        expected = f"float32 images (B, 3, {self.image_size}, {self.image_size}) in [0, 1]"
        if not isinstance(images, np.ndarray) or images.dtype != np.float32:
            raise ConfigError(f"images: expected {expected}, got {type(images).__name__}")
        if images.ndim != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ConfigError(f"images: expected {expected}, got shape {images.shape}")
        values = self.session.run(list(OUTPUTS), {"images": np.ascontiguousarray(images)})
        result = dict(zip(OUTPUTS, values, strict=True))
        cal = self.calibration
        result["normalized_score"] = (result["score"] - cal["score_mean"]) / max(
            cal["score_std"], 1e-12
        )
        result["label"] = (result["score"] > self.threshold).astype(np.int64)
        return result

    def resize(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) -> uint8 (3, S, S): antialiased bilinear, rounded (see the module)."""
        size = self.image_size
        if self.center_crop < 1:
            top, left, bottom, right = center_box(rgb.shape[0], rgb.shape[1], self.center_crop)
            rgb = rgb[top:bottom, left:right]
        if rgb.shape[:2] == (size, size):
            return np.ascontiguousarray(rgb.transpose(2, 0, 1))
        channels = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(rgb[..., c], dtype=np.float32)).resize(
                    (size, size), Image.Resampling.BILINEAR
                )
            )
            for c in range(3)
        ]
        return np.stack(channels).round().clip(0, 255).astype(np.uint8)

    def map_at(self, anomaly_map: np.ndarray, height: int, width: int) -> np.ndarray:
        """Resize one map (h, w) to an image's own resolution (bilinear), or to its central crop's
        with zeros around it."""
        box = center_box(height, width, self.center_crop)
        inner_height, inner_width = box[2] - box[0], box[3] - box[1]
        if anomaly_map.shape != (inner_height, inner_width):
            picture = Image.fromarray(np.ascontiguousarray(anomaly_map, dtype=np.float32))  # mode F
            size = (inner_width, inner_height)
            anomaly_map = np.asarray(picture.resize(size, Image.Resampling.BILINEAR))
        return place_in_box(anomaly_map, height, width, box)
