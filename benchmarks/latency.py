"""Inference latency for one image and throughput at batch 32: PyTorch against ONNX Runtime.

Both run the same computation: piade's scoring graph (``piade.inference.export.ScoringGraph``: reconstruction,
the paper's score and the anomaly map) with random weights at the paper's 120 px. PyTorch runs it
eagerly in the engine's layout (channels_last, ``torch.no_grad``); ONNX Runtime runs the file
``piade export`` writes (checked against PyTorch on export), with the CPU provider, full graph
optimisation and as many threads as torch uses. Latency is the median (and 90th percentile) of
``--runs`` single-image calls after warm-up; throughput the median of ``--repeats`` batch calls.

    python benchmarks/latency.py                     # 120 px, CPU (part of make bench)
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from piade.benchmark.cost import device_description
from piade.config import ModelConfig
from piade.inference.calibration import Calibration
from piade.inference.detector import Detector
from piade.inference.export import ScoringGraph, export_onnx
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model
from piade.runtime import keep_freed_memory


def random_detector(size: int) -> Detector:
    model = build_model(ModelConfig(image_size=size), encoder_weights=None)
    criterion = ReconstructionLoss(build_perceptual_network("vgg11", weights=None))
    scales = {"ssim": 1.0, "perceptual": 1.0, "mse": 1.0}
    calibration = Calibration(1, 0.0, 1.0, 0.0, "none", "ssim", scales, 1.0)
    return Detector(model, criterion, calibration).to("cpu")


def seconds_of(run: Callable[[], object], times: int) -> list[float]:
    run()  # warm-up
    out = []
    for _ in range(times):
        tic = time.perf_counter()
        run()
        out.append(time.perf_counter() - tic)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=32, help="for the throughput figure")
    parser.add_argument("--runs", type=int, default=30, help="single-image calls timed")
    parser.add_argument("--repeats", type=int, default=3, help="batch calls timed")
    args = parser.parse_args()
    import onnxruntime

    keep_freed_memory()
    torch.manual_seed(0)
    print(json.dumps({"machine": device_description(torch.device("cpu"))}))
    detector = random_detector(args.size)
    graph = ScoringGraph(detector).eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "piade.onnx"
        difference = export_onnx(detector, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    records = []
    for batch, times in ((1, args.runs), (args.batch_size, args.repeats)):
        images = torch.rand(batch, 3, args.size, args.size)
        channels_last = images.contiguous(memory_format=torch.channels_last)
        feed = {"images": images.numpy()}

        def pytorch(images: torch.Tensor = channels_last) -> object:
            with torch.no_grad():
                return graph(images)

        def ort(feed: dict[str, np.ndarray] = feed) -> object:
            return session.run(None, feed)

        for runtime, run in (("pytorch", pytorch), ("onnxruntime", ort)):
            seconds = seconds_of(run, times)
            median = statistics.median(seconds)
            record = {
                "runtime": runtime,
                "image_size": args.size,
                "batch_size": batch,
                "median_ms": median * 1e3,
                "p90_ms": float(np.quantile(seconds, 0.9)) * 1e3,
                "images_per_s": batch / median,
                "calls": times,
                "onnx_relative_differences": difference,
            }
            print(json.dumps({k: float(f"{v:.4g}") if isinstance(v, float) else v
                              for k, v in record.items()}), flush=True)  # fmt: skip
            records.append(record)
    print(f"\n{'runtime':>12} {'batch':>5} {'median ms':>10} {'p90 ms':>8} {'img/s':>8}")
    for r in records:
        print(
            f"{r['runtime']:>12} {r['batch_size']:>5} {r['median_ms']:>10.1f} "
            f"{r['p90_ms']:>8.1f} {r['images_per_s']:>8.1f}"
        )


if __name__ == "__main__":
    main()
