"""What a deployed detector imports: not torchvision, whose import costs seconds (docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from piade.config import ModelConfig
from piade.inference.calibration import calibrate
from piade.inference.detector import Detector
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model


def test_loading_and_scoring_a_resnet_detector_does_not_import_torchvision(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_size=32)).eval()  # ResNet-18, random
    criterion = ReconstructionLoss(build_perceptual_network("vgg11", weights=None))
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    calibration = calibrate(model, criterion, images, quantile=0.99, map_kind="ssim")
    path = tmp_path / "model.safetensors"
    Detector(model, criterion, calibration, info={"loss": {"perceptual_net": "vgg11"}}).save(path)
    probe = (
        "import sys, torch, piade\n"
        f"detector = piade.load({str(path)!r})\n"
        "scores = detector.score(torch.rand(2, 3, 32, 32))\n"
        "print(sorted(m for m in ('torchvision', 'timm', 'torch._dynamo') if m in sys.modules))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]", found
