"""docs/reliability.md lists every case these tests check (so the page cannot drift from them)."""

from __future__ import annotations

import importlib
from pathlib import Path

from tests.reliability.badfiles import unusual_images
from tests.reliability.test_bad_inputs import BROKEN
from tests.reliability.test_bad_layouts import CASES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
MODULES = (
    "test_bad_inputs",
    "test_bad_layouts",
    "test_training_faults",
    "test_model_files",
    "test_fuzz",
    "test_predict_scale",
)


def test_every_test_and_case_is_listed() -> None:
    text = PAGE.read_text()
    names = [*BROKEN, *unusual_images(), *CASES]
    for module in MODULES:
        loaded = importlib.import_module(f"tests.reliability.{module}")
        names += [name for name in vars(loaded) if name.startswith("test_")]
    missing = sorted({name for name in names if name not in text})
    assert not missing, f"docs/reliability.md does not mention: {', '.join(missing)}"
