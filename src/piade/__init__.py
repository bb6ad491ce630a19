"""piade — Pyramidal Image Anomaly DEtector.

An implementation of Mishra, Piciarelli & Foresti, "A neural network for image anomaly detection
with deep pyramidal representations and dynamic routing", IJNS 30(10), 2020.
"""

from piade.config import ModelConfig
from piade.errors import ConfigError, DataError, PiadeError, WeightsError
from piade.inference import Calibration, Detection, Detector, load
from piade.losses import LossTerms, ReconstructionLoss, build_perceptual_network, ssim
from piade.model import ModelOutput, PyramidalCapsuleAutoencoder, build_model
from piade.runtime import keep_freed_memory
from piade.train import TrainConfig, fit
from piade.version import __version__

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
