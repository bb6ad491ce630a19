"""bf16 scoring on the CPU: offered where the CPU has bf16 instructions, refused clearly elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tests.reliability.conftest import SIZE, tiny_detector

import piade
from piade import runtime
from piade.errors import ConfigError


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    tiny_detector().save(path)
    return path


@pytest.mark.skipif(not runtime.cpu_supports_bf16(), reason="this CPU has no bf16 instructions")
def test_bf16_scores_follow_fp32_scores(model_file: Path) -> None:
    images = torch.rand(6, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    fp32 = piade.load(model_file).score(images)
    bf16 = piade.load(model_file, precision="bf16").score(images)
    assert bf16.score.dtype == torch.float32 and bf16.lengths.dtype == torch.float32
    assert torch.allclose(bf16.score, fp32.score, rtol=0.05)
    assert torch.equal(bf16.label, fp32.label) or (bf16.score - fp32.score).abs().max() < 0.05


def test_bf16_on_a_cpu_without_it_is_refused_at_load(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: False)
    with pytest.raises(ConfigError, match="no bf16 instructions"):
        piade.load(model_file, precision="bf16")


def test_fp16_on_the_cpu_is_refused(model_file: Path) -> None:
    with pytest.raises(ConfigError, match="fp16 is for CUDA"):
        piade.load(model_file, precision="fp16")
