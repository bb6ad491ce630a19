"""Inference: a trained detector and everything that uses one without training it.

:mod:`~piade.inference.scoring` (reconstruction residuals, anomaly maps, image scores),
:mod:`~piade.inference.calibration` (score statistics and the threshold),
:mod:`~piade.inference.detector` (:class:`Detector`: a network, its loss and its calibration),
:mod:`~piade.inference.modelfile` (the safetensors model file), :mod:`~piade.inference.maps`
(anomaly maps as pictures), :mod:`~piade.inference.predict` (scoring folders of images, ``piade
predict``), :mod:`~piade.inference.export` (ONNX) and :mod:`~piade.inference.portable` (an
exported file run with ONNX Runtime, without torch).

The names below are imported on first use, so the torch-free modules (``portable``, ``maps``,
``predict``) import without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piade.lazy import attributes

if TYPE_CHECKING:
    from piade.inference.calibration import Calibration
    from piade.inference.detector import Detection, Detector, load

_HOMES = {
    "Calibration": "piade.inference.calibration",
    "Detection": "piade.inference.detector",
    "Detector": "piade.inference.detector",
    "load": "piade.inference.detector",
}

__all__ = ["Calibration", "Detection", "Detector", "load"]


__getattr__, __dir__ = attributes(__name__, _HOMES)
