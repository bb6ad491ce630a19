"""piade — Pyramidal Image Anomaly DEtector.

An implementation of Mishra, Piciarelli & Foresti, "A neural network for image anomaly detection
with deep pyramidal representations and dynamic routing", IJNS 30(10), 2020.

The names below are imported on first use (PEP 562), so ``import piade`` and ``piade --help`` do not
pay for torch, torchvision and scikit-learn until something needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from piade.lazy import attributes
from piade.version import __version__

if TYPE_CHECKING:
    from piade.config import ModelConfig
    from piade.errors import ConfigError, DataError, PiadeError, WeightsError
    from piade.inference import Calibration, Detection, Detector, load
    from piade.losses import LossTerms, ReconstructionLoss, build_perceptual_network, ssim
    from piade.model import ModelOutput, PyramidalCapsuleAutoencoder, build_model
    from piade.runtime import keep_freed_memory
    from piade.train import TrainConfig, fit

_HOMES = {  # public name -> the module it lives in
    "ModelConfig": "piade.config",
    "ConfigError": "piade.errors",
    "DataError": "piade.errors",
    "PiadeError": "piade.errors",
    "WeightsError": "piade.errors",
    "Calibration": "piade.inference",
    "Detection": "piade.inference",
    "Detector": "piade.inference",
    "load": "piade.inference",
    "LossTerms": "piade.losses",
    "ReconstructionLoss": "piade.losses",
    "build_perceptual_network": "piade.losses",
    "ssim": "piade.losses",
    "ModelOutput": "piade.model",
    "PyramidalCapsuleAutoencoder": "piade.model",
    "build_model": "piade.model",
    "keep_freed_memory": "piade.runtime",
    "TrainConfig": "piade.train",
    "fit": "piade.train",
}

__all__ = [
    "Calibration",
    "ConfigError",
    "DataError",
    "Detection",
    "Detector",
    "LossTerms",
    "ModelConfig",
    "ModelOutput",
    "PiadeError",
    "PyramidalCapsuleAutoencoder",
    "ReconstructionLoss",
    "TrainConfig",
    "WeightsError",
    "__version__",
    "build_model",
    "build_perceptual_network",
    "fit",
    "keep_freed_memory",
    "load",
    "ssim",
]


__getattr__, __dir__ = attributes(__name__, _HOMES)
