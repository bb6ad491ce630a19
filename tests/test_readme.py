"""The README's figures are re-measured, so they cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from piade import ModelConfig, build_model
from piade.profile import count_parameters, forward_flops

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize("size", [32, 120])
def test_size_and_cost_table(size: int) -> None:
    row = re.search(rf"^\| {size} px \| ([\d,]+) \| ([\d.]+) \| (\d+) \|", README.read_text(), re.M)
    assert row is not None, f"README has no size-and-cost row for {size} px"
    model = build_model(ModelConfig(image_size=size))
    assert int(row[1].replace(",", "")) == count_parameters(model)
    assert float(row[2]) == round(forward_flops(model, size) / 1e9, 4)
    assert int(row[3]) == model.pyramid.num_capsules


def test_python_example_runs() -> None:
    text = README.read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S)
    assert example is not None
    source = example[1].replace(
        "piade.ReconstructionLoss()", "piade.ReconstructionLoss(piade.build_perceptual_network())"
    )
    exec(compile(source, str(README), "exec"), {})
