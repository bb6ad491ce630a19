"""ONNX export of a detector: one graph from images to reconstruction, score and anomaly map.

The graph takes ``images`` (B, 3, H, W) float32 in [0, 1] at the model's input size (B is dynamic)
and returns ``reconstruction`` (B, 3, H, W) in [0, 1], ``score`` (B,) — the paper's score — and
``anomaly_map`` (B, H, W). After writing, the file is run with ONNX Runtime on one batch and
compared with PyTorch.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from piade.detector import Detector
from piade.errors import PiadeError
from piade.scoring import combine_maps, score_images

log = logging.getLogger(__name__)

OUTPUTS = ("reconstruction", "score", "anomaly_map")


class ExportError(PiadeError, RuntimeError):
    """The export failed, or ONNX Runtime disagrees with PyTorch."""


class ScoringGraph(nn.Module):
    """A detector as a plain module: images → (reconstruction, score, anomaly map)."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.model = detector.model
        self.criterion = detector.criterion
        self.map_kind = detector.calibration.map_kind
        self.map_scales = dict(detector.calibration.map_scales)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raw = score_images(self.model, self.criterion, images)
        reconstruction = (raw.output.reconstruction + 1) / 2  # (B, 3, H, W)
        return (
            reconstruction,
            raw.terms.total,
            combine_maps(raw.residuals, self.map_kind, self.map_scales),
        )


def export_onnx(
    detector: Detector,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 2,
    tolerance: float = 1e-4,
    seed: int = 0,
) -> float:
    """Write ``path`` and return the max abs difference ONNX Runtime vs PyTorch on one batch.

    Raises :class:`ExportError` (and removes the file) when the difference exceeds ``tolerance``.
    """
    try:
        import onnxruntime
        import onnxscript  # noqa: F401  (the exporter needs it)
    except ImportError as error:
        raise ExportError(
            "ONNX export needs the 'onnx' extra: pip install 'piade[onnx]'"
        ) from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = detector.device
    graph = ScoringGraph(detector).to("cpu").eval()
    size = detector.image_size
    generator = torch.Generator().manual_seed(seed)
    example = torch.rand(batch_size, 3, size, size, generator=generator)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with torch.no_grad():
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=["images"],
            output_names=list(OUTPUTS),
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    check = torch.rand(batch_size + 1, 3, size, size, generator=generator)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_outputs = session.run(list(OUTPUTS), {"images": check.numpy()})
    with torch.no_grad():
        torch_outputs = graph(check)
    diff = max(
        float(np.abs(o - t.numpy()).max()) for o, t in zip(onnx_outputs, torch_outputs, strict=True)
    )
    detector.to(device)
    if diff > tolerance:
        path.unlink(missing_ok=True)
        raise ExportError(
            f"ONNX Runtime differs from PyTorch by {diff:.2e} (> {tolerance:.0e}) "
            f"on {path}; please report this with the model file"
        )
    return diff
