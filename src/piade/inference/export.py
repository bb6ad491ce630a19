"""ONNX export of a detector: one graph from images to reconstruction, score and anomaly map.

The graph takes ``images`` (B, 3, H, W) float32 in [0, 1] at the model's input size (B is dynamic)
and returns ``reconstruction`` (B, 3, H, W) in [0, 1], ``score`` (B,) — the model file's image score
(its calibration's ``score_kind``) — ``anomaly_map`` (B, H, W), the paper's loss terms ``mse``,
``perceptual`` and ``ssim`` (B,), the instantiation vectors' ``lengths`` (B, J) and the index of the
``decoded`` vector (B,). The file's metadata (key :data:`METADATA_KEY`) holds what a runtime needs
besides the graph: the input size, the preprocessing and the calibration (threshold, normalisation,
map scale), so :class:`~piade.inference.portable.OnnxDetector` predicts from the file alone, without
torch. After writing, the file is run with ONNX Runtime and compared with
PyTorch on uniform noise and on image-like inputs (:func:`check_images`): smooth random images, flat
images and, when given, the user's own images — the inputs on which a near-tie of the two vector
lengths or a saturated squash would show a difference that noise hides.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from piade.errors import PiadeError
from piade.inference.detector import Detector
from piade.inference.portable import METADATA_FORMAT, METADATA_KEY, OUTPUTS
from piade.inference.scoring import anomaly_map, image_score, score_images

log = logging.getLogger(__name__)

# How far ONNX Runtime may stray from PyTorch, relative to each output's largest magnitude (at
# least 1). The score and the map decide verdicts and locations: 1e-4. The reconstruction is only
# shown, as an 8-bit picture: 1e-3 is a quarter of one grey level. Float32 round-off grows through
# batch norms whose training variance is small when an input lies far from the training images
# (uniform noise on a model with exact batch-norm statistics: 2.7e-4 on the reconstruction, 3e-5
# on the map).
# The loss terms and lengths: 1e-4 like the score. The decoded vector's index must be the same.
TOLERANCES = {
    "reconstruction": 1e-3,
    "score": 1e-4,
    "anomaly_map": 1e-4,
    "mse": 1e-4,
    "perceptual": 1e-4,
    "ssim": 1e-4,
    "lengths": 1e-4,
    "decoded": 0.0,
}


class ExportError(PiadeError, RuntimeError):
    """The export failed, or ONNX Runtime disagrees with PyTorch."""


class ScoringGraph(nn.Module):
    """A detector as a plain module: images → the :data:`OUTPUTS`, in that order."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.model = detector.model
        self.criterion = detector.criterion
        self.map_kind = detector.calibration.map_kind
        self.map_scales = dict(detector.calibration.map_scales)
        self.score_kind = detector.calibration.score_kind
        self.map_sigma = detector.calibration.map_sigma

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raw = score_images(self.model, self.criterion, images)
        reconstruction = (raw.output.reconstruction + 1) / 2  # (B, 3, H, W)
        score = image_score(raw, self.score_kind, map_kind=self.map_kind, scales=self.map_scales)
        heat = anomaly_map(raw.residuals, self.map_kind, self.map_scales, self.map_sigma)
        terms, output = raw.terms, raw.output
        return (
            reconstruction,
            score,
            heat,
            terms.mse,
            terms.perceptual,
            terms.ssim,
            output.lengths,
            output.decoded,
        )


def export_metadata(detector: Detector) -> dict[str, object]:
    """What a runtime needs besides the graph, stored in the file under :data:`METADATA_KEY`."""
    return {
        "format": METADATA_FORMAT,
        "outputs": list(OUTPUTS),
        "image_size": detector.image_size,
        "num_vectors": detector.config.num_vectors,
        "model": detector.config.to_dict(),
        "calibration": dataclasses.asdict(detector.calibration),
        "data": detector.info.get("training", {}).get("data"),  # as fit recorded them
        "training": detector.info.get("training", {}).get("train"),
        "loss": detector.info.get("loss"),
        "preprocessing": {
            "center_crop": detector.config.center_crop,
            "color": "RGB",
            "range": [0.0, 1.0],
            "resize": "bilinear, antialiased",
            "layout": "NCHW float32",
        },
    }


def check_images(size: int, count: int, *, generator: torch.Generator) -> torch.Tensor:
    """``count`` image-like inputs (count, 3, size, size) in [0, 1] for the export check.

    Uniform noise, smooth colour fields (random 4x4 images upsampled bilinearly), and flat grey,
    black and white images, in turn.
    """
    noise = torch.rand(count, 3, size, size, generator=generator)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    smooth = nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    flat = torch.tensor([0.5, 0.0, 1.0]).repeat(count)[:count, None, None, None]
    kinds = [noise, smooth, flat.expand(count, 3, size, size)]
    return torch.stack([kinds[i % 3][i] for i in range(count)])  # (count, 3, size, size)


def export_onnx(
    detector: Detector,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 2,
    seed: int = 0,
    images: torch.Tensor | None = None,
) -> dict[str, float]:
    """Write ``path`` and return each output's difference, ONNX Runtime vs PyTorch.

    The file holds the graph and :func:`export_metadata`. A difference is the max abs difference over the checks divided by the output's largest
    magnitude (at least 1); each must stay within :data:`TOLERANCES`.

    The check runs on a batch of ``batch_size + 1`` uniform-noise images, one of 6 image-like inputs
    (:func:`check_images`) and, when given, on ``images`` (N, 3, H, W) in [0, 1] at the model's
    size (e.g. a few of the user's own pictures). Raises :class:`ExportError` (and removes the file)
    when a difference exceeds its tolerance.
    """
    try:
        import onnx
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
    written = onnx.load(str(path))
    onnx.helper.set_model_props(written, {METADATA_KEY: json.dumps(export_metadata(detector))})
    onnx.save(written, str(path))
    checks = [
        torch.rand(batch_size + 1, 3, size, size, generator=generator),
        check_images(size, 6, generator=generator),
    ]
    if images is not None:
        checks.append(images.float().cpu())
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    found = [_differences(session, graph, check) for check in checks]
    diffs = {name: max(d[name] for d in found) for name in OUTPUTS}
    detector.to(device)
    over = [name for name in OUTPUTS if diffs[name] > TOLERANCES[name]]
    if over:
        path.unlink(missing_ok=True)
        worst = ", ".join(f"{n} by {diffs[n]:.2e} (> {TOLERANCES[n]:.0e})" for n in over)
        raise ExportError(
            f"ONNX Runtime differs from PyTorch: {worst} on {path}; "
            "please report this with the model file"
        )
    return diffs


def _differences(session: object, graph: ScoringGraph, images: torch.Tensor) -> dict[str, float]:
    """Each output's max abs difference, ONNX Runtime vs PyTorch, on ``images``, relative to the
    output's largest magnitude (at least 1)."""
    onnx_outputs = session.run(list(OUTPUTS), {"images": images.numpy()})  # type: ignore[attr-defined]
    with torch.no_grad():
        torch_outputs = graph(images)
    return {
        name: float(np.abs(o - t.numpy()).max() / max(1.0, float(np.abs(t.numpy()).max())))
        for name, o, t in zip(OUTPUTS, onnx_outputs, torch_outputs, strict=True)
    }
