"""Shared fixtures for the reliability tests: a small model file and the CLI run in-process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.fakes import TINY_BACKBONE, normal_image

from piade import ModelConfig
from piade.cli import main
from piade.inference.calibration import calibrate
from piade.inference.detector import Detector
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model

SIZE = 32


def tiny_detector(seed: int = 0) -> Detector:
    """An untrained tiny detector, calibrated on a few smooth images (scores need not be good)."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(image_size=SIZE, backbone=TINY_BACKBONE)).eval()
    criterion = ReconstructionLoss(build_perceptual_network("vgg11", weights=None))
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(np.stack([normal_image(rng, SIZE) for _ in range(6)]))
    calibration = calibrate(
        model, criterion, images.permute(0, 3, 1, 2), quantile=0.99, map_kind="ssim"
    )
    return Detector(model, criterion, calibration, info={"loss": {"perceptual_net": "vgg11"}})


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``model.safetensors`` of :func:`tiny_detector`, written once per test session."""
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    tiny_detector().save(path)
    return path


@dataclass(frozen=True)
class Run:
    """One in-process ``piade`` run: exit code and what it printed."""

    code: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        lines = self.err.strip().splitlines()
        return lines[-1] if lines else ""

    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if ": error: " in line]


Cli = Callable[[Sequence[object]], Run]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli(argv) -> Run``: ``piade.cli.main`` with its output captured."""

    def run(argv: Sequence[object]) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
