"""docs/results.md is generated from the benchmark JSON, and stays in step with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.benchmark.test_tables import RESULTS

from piade.benchmark.page import render_page
from piade.benchmark.tables import write_tables

REPO = Path(__file__).resolve().parents[2]


def test_docs_results_page_is_generated_from_the_committed_json() -> None:
    script = REPO / "benchmarks" / "results_page.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_page_compares_with_the_paper_and_names_the_weights(tmp_path: Path) -> None:
    runs = [r | {"root": "data/mvtec", "command": "piade benchmark mvtec", "piade_version": "0"}
            for r in RESULTS]  # fmt: skip
    for r in runs:
        r["cost"] |= {
            "device": "cpu",
            "cpu_count": 2,
            "torch_threads": 2,
            "torch": "2",
            "python": "3",
        }
        r["cost"] |= {"train_seconds": 50.0, "infer_seconds": 10.0}
        r["settings"] |= {"backbone": "resnet18", "perceptual_net": "vgg16"}
        r["settings"]["perceptual_weights"] = "/somewhere/vgg16_features.pth"
        r["fitted"] = {"batch_size": 16} if r["method"].startswith("piade") else {}
    (tmp_path / "results").mkdir()
    write_tables(tmp_path / "results", runs, suite="mvtec")
    page = render_page([tmp_path / "results" / "results.json"], base=tmp_path)
    assert "random initialisation (no pretrained weights)" in page
    # the runs predate --perceptual-depth: they ran with its default, the first four modules
    assert "vgg16().features[:4] with the file `vgg16_features.pth`" in page
    # piade's mean here (0.85 + 0.60) / 2 = 0.725 against the paper's (0.968 + 0.978) / 2 = 0.973
    assert 'mean image AUROC 0.725 here against 0.973 in the paper\'s column "Ours"' in page
    assert "0.248 below it" in page
    assert (
        "![ablation](results/ablation.png)" not in page
    )  # the chart is looked up as NAME-ablation.png
    assert "](results/results.json)" in page
    assert "| piade | 3 | 3.0 |" in page  # three runs of 60 s
