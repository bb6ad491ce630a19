"""piade — Pyramidal Image Anomaly DEtector.

An implementation of Mishra, Piciarelli & Foresti, "A neural network for image anomaly detection
with deep pyramidal representations and dynamic routing", IJNS 30(10), 2020.
"""

from piade.config import ModelConfig
from piade.losses import LossTerms, ReconstructionLoss, build_perceptual_network, ssim
from piade.model import ModelOutput, PyramidalCapsuleAutoencoder, build_model

__version__ = "0.1.0"

__all__ = [
    "LossTerms",
    "ModelConfig",
    "ModelOutput",
    "PyramidalCapsuleAutoencoder",
    "ReconstructionLoss",
    "__version__",
    "build_model",
    "build_perceptual_network",
    "ssim",
]
