"""Inference: a trained detector and everything that uses one without training it.

:mod:`~piade.inference.scoring` (reconstruction residuals, anomaly maps, image scores),
:mod:`~piade.inference.calibration` (score statistics and the threshold),
:mod:`~piade.inference.detector` (:class:`Detector`: a network, its loss and its calibration),
:mod:`~piade.inference.modelfile` (the safetensors model file), :mod:`~piade.inference.maps`
(anomaly maps as pictures), :mod:`~piade.inference.predict` (scoring folders of images, ``piade
predict``), :mod:`~piade.inference.export` (ONNX).
"""

from piade.inference.calibration import Calibration
from piade.inference.detector import Detection, Detector, load

__all__ = ["Calibration", "Detection", "Detector", "load"]
