"""Baseline anomaly detectors for the benchmark tables: OC-SVM, KDE, AE-L2 and AE-SSIM.

``build_baseline(name, image_size=...)`` returns a :class:`Baseline`: ``fit`` it on normal uint8
(N, 3, S, S) images, then ``score`` test images to get a :class:`BaselineScores` (image scores and,
for the autoencoders, per-pixel maps). See :mod:`piade.baselines.shallow` and
:mod:`piade.baselines.ae_training` for the methods and their hyper-parameters.
"""

from __future__ import annotations

from piade.baselines.base import Baseline, BaselineScores
from piade.baselines.factory import BASELINES, build_baseline

__all__ = ["BASELINES", "Baseline", "BaselineScores", "build_baseline"]
