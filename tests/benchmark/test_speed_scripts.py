"""The speed scripts of ``make bench`` and ``benchmarks/gpu.sh`` run and print consistent figures.

Tiny settings on the CPU: these check the scripts work and that their figures hang together
(efficiency = achieved / theoretical peak and / best kernel, one record per size, mode and
setting), never a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _run(script: str, *args: str) -> list[dict]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def test_speed_prints_one_record_per_size_mode_and_setting() -> None:
    args = ["--sizes", "32", "--batch-size", "4", "--repeats", "2", "--compare", "channels-last"]
    machine, *records = _run("speed.py", *args)
    assert machine["machine"]["device"] == "cpu"
    peak = machine["peak"]
    assert peak["cores"] >= 1 and peak["clock_ghz"] > 0 and peak["fp32_flops_per_cycle"] >= 8
    assert peak["peak_gflops"] == pytest.approx(
        peak["cores"] * peak["clock_ghz"] * peak["fp32_flops_per_cycle"], rel=1e-2
    )
    engine = "fused-distance+keep-freed-memory+kept-targets+one-pixel-matmul"
    assert [(r["mode"], r["settings"]) for r in records] == [
        ("train", engine),
        ("train", f"channels-last+{engine}"),
        ("infer", engine),
        ("infer", f"channels-last+{engine}"),
    ]
    for r in records:
        assert (
            r["image_size"] == 32 and r["batch_size"] == 4 and len(r["samples_images_per_s"]) == 2
        )
        assert r["images_per_s"] > 0 and r["best_kernel_gflops"] > 0
        assert r["achieved_gflops"] == pytest.approx(r["images_per_s"] * r["gflop_per_image"], 1e-3)
        assert r["efficiency_vs_peak"] == pytest.approx(
            r["achieved_gflops"] / peak["peak_gflops"], abs=1e-3
        )
        assert 0 < r["efficiency_vs_best_kernel"] < 2
    train, infer = records[0], records[2]
    # training adds the backward (about 2x the forward) but, with kept-targets, runs the
    # perceptual network on the reconstructions only; scoring runs it on both
    assert train["gflop_per_image"] > 1.5 * infer["gflop_per_image"]


def test_the_one_pixel_matmul_does_the_convolutions_valid_work() -> None:
    """At 32 px the last stage's one-pixel outputs are matrix products over the taps that meet
    the input: the FLOPs per image must equal the convolution's less its taps on padding."""
    args = ["--sizes", "32", "--batch-size", "2", "--repeats", "1", "--compare", "one-pixel-matmul"]
    _, *records = _run("speed.py", *args)
    without, with_ = records[0], records[1]
    assert "one-pixel-matmul" in with_["settings"] and "one-pixel-matmul" not in without["settings"]
    assert with_["gflop_per_image"] == pytest.approx(without["gflop_per_image"], rel=1e-6)


def test_conv_bound_adds_up() -> None:
    (record,) = _run("conv_bound.py", "--size", "32", "--batch-size", "2")
    passes = record["passes"]
    assert set(passes) == {"forward", "input gradient", "weight gradient"}
    calls = record["calls"]
    assert sum(p["calls"] for p in passes.values()) == len(calls)
    alone = sum(c["alone_ms"] for c in calls) / 1e3
    assert record["convolutions_alone_seconds"] == pytest.approx(alone, abs=0.01)
    assert record["bound_vs_best_kernel"] == pytest.approx(
        record["step_gflop"] / record["convolutions_alone_seconds"] / record["best_kernel_gflops"],
        rel=0.05,
    )
    # the ResNet's one-pixel outputs at 32 px are matrix products, not convolution calls
    assert not any(c["conv"].startswith("512->512 3x3 at 1x1") for c in calls)
    assert any(c["conv"].startswith("3->64 7x7 at 32x32") for c in calls)  # the stem


def test_speed_refuses_to_compare_a_process_wide_setting() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "speed.py"), "--compare", "keep-freed-memory"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "--without keep-freed-memory" in done.stderr


def test_latency_compares_pytorch_and_onnx_runtime() -> None:
    pytest.importorskip("onnxruntime")
    args = ["--size", "32", "--batch-size", "4", "--runs", "3", "--repeats", "2"]
    _, *records = _run("latency.py", *args)
    assert [(r["runtime"], r["batch_size"]) for r in records] == [
        ("pytorch", 1),
        ("onnxruntime", 1),
        ("pytorch", 4),
        ("onnxruntime", 4),
    ]
    assert all(r["median_ms"] > 0 and r["p90_ms"] >= r["median_ms"] * 0.5 for r in records)
    assert all(r["onnx_relative_differences"]["score"] <= 1e-4 for r in records)


def test_fit_time_runs_the_engine_on_synthetic_data() -> None:
    args = ["--device", "cpu", "--shape", "cifar10", "--epochs", "2", "--images", "12"]
    (record,) = _run("fit_time.py", *args, "--batch-size", "4")
    assert record["train_images"] == 12 and record["image_size"] == 32 and record["epochs"] == 2
    assert record["seconds"] > 0 and record["machine"]["device"] == "cpu"


def test_ocsvm_subspace_script_reports_every_score(tmp_path: Path) -> None:
    from tests.data.writers import write_coil

    root = write_coil(tmp_path / "coil", 3, 10, size=16)
    (row,) = _run("ocsvm_subspace.py", "--root", str(root), "--objects", "2", "--image-size", "16")
    assert row["object"] == 2 and row["components"] >= 1
    for key in ("ocsvm", "inside_distance", "outside_residual", "pixel_distance"):
        assert 0.0 <= row[key] <= 1.0
    assert row["pixel_distance"] == 1.0  # object 2's brightness (40) differs from 1's and 3's


def test_predict_e2e_prints_every_rate_beside_the_model_only_rate() -> None:
    pytest.importorskip("onnxscript")
    args = ["--count", "3", "--side", "48", "--size", "32", "--repeats", "1", "--batch-size", "2",
            "--onnx"]  # fmt: skip
    setup, *records = _run("predict_e2e.py", *args)
    assert setup["setup"]["images"] == 3 and setup["setup"]["model_px"] == 32
    names = [r["what"] for r in records]
    variants = ["--maps overlay", "--maps overlay --map-format jpg", "--maps heatmap",
                "--maps heatmap --map-format jpg", "--maps none"]  # fmt: skip
    assert names == [
        "model only", *(f"piade predict {v}" for v in variants), "piade predict (1 image)",
        "onnx model only", *(f"piade predict onnx {v}" for v in variants),
        "piade predict onnx (1 image)", "piade --help",
    ]  # fmt: skip
    assert all("images_per_s_after_start_up" in r for r in records[1:6] + records[8:13])
    assert all(r.get("images_per_s", 1) > 0 and r.get("seconds", 1) > 0 for r in records)
