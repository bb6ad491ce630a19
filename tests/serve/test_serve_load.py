"""``benchmarks/serve_load.py`` runs end to end on a tiny model (its figures are for real models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.serve.conftest import encode, picture

pytestmark = pytest.mark.loopback
ROOT = Path(__file__).resolve().parents[2]


def test_serve_load_prints_each_concurrency_beside_predict(
    served_model: Path, tmp_path: Path
) -> None:
    for seed in range(4):
        (tmp_path / f"{seed}.png").write_bytes(encode(picture(seed)))
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/serve_load.py"), str(served_model), str(tmp_path),
         "--concurrency", "1", "3", "--rounds", "2"],
        capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["what"] for r in records] == [
        "serve, 1 client(s)",
        "serve, 3 client(s)",
        "piade predict --maps none",
    ]
    for r in records[:2]:
        assert r["images"] == 8 and r["images_per_s"] > 0
        assert r["latency_p50_ms"] <= r["latency_p95_ms"] <= r["latency_p99_ms"]
    assert "requests/s" in done.stdout and "of predict" in done.stdout
