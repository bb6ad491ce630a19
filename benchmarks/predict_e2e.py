"""``piade predict`` end to end against the model alone, on real-size image files.

Writes ``--count`` PNGs of ``--side`` px (smooth synthetic parts, 900 px like MVTec AD's originals)
or reads ``--images DIR``, builds an untrained detector at ``--size`` px (speed does not depend on
the weights) unless ``--model`` is given, then measures in one run:

* model only: ``Detector.score`` on the images already decoded and resized, in batches;
* the whole ``piade predict`` command (a new process: start-up, decoding, resizing, scoring,
  maps at full resolution, CSV), for ``--maps overlay``, ``heatmap`` and ``none``, as PNG and JPEG;
* ``piade --help`` and ``piade predict`` of one image (start-up), and each command's rate after
  start-up (its time less the one-image command's);
* with ``--onnx``, the same for the model exported by ``piade export`` and run by ONNX Runtime
  (``piade predict model.onnx``, no torch): the model alone (``OnnxDetector.score``), the commands
  and their start-up.

Prints one JSON line per figure, then a table with each rate as a share of the model-only rate.

    python benchmarks/predict_e2e.py                      # 83 images of 900 px, 256 px model
    python benchmarks/predict_e2e.py --images ../shared/data/mvtec_ad/bottle/test --size 120
    python benchmarks/predict_e2e.py --onnx               # and the exported model, with ONNX Runtime
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from piade.config import ModelConfig
from piade.data.decode import read_rgb, resize_image
from piade.inference.calibration import calibrate
from piade.inference.detector import Detector
from piade.inference.export import export_onnx
from piade.inference.portable import OnnxDetector
from piade.inference.predict import TorchScorer
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model
from piade.runtime import keep_freed_memory

VARIANTS = (  # the whole command's flags, each timed
    "--maps overlay",
    "--maps overlay --map-format jpg",
    "--maps heatmap",
    "--maps heatmap --map-format jpg",
    "--maps none",
)


def write_images(folder: Path, count: int, side: int) -> list[Path]:
    """Smooth coloured parts with a few scratches: PNGs that compress like photographs of parts."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    xx = np.mgrid[0:side, 0:side][1] / side
    for i in range(count):
        base = np.stack([np.sin(6 * xx * rng.uniform(0.5, 2) + c) for c in range(3)], axis=-1)
        noise = np.asarray(Image.fromarray(rng.integers(0, 255, (side // 8, side // 8, 3),
                                                        dtype=np.uint8)).resize((side, side)))  # fmt: skip
        image = (0.6 * (base + 1) * 127 + 0.4 * noise).clip(0, 255).astype(np.uint8)
        if i % 2:
            r = int(rng.integers(side // 4, 3 * side // 4))
            image[r : r + side // 50, side // 5 : 4 * side // 5] = 20
        path = folder / f"part_{i:03d}.png"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def untrained_model(size: int, folder: Path, images: torch.Tensor) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_size=size), encoder_weights=None).eval()
    criterion = ReconstructionLoss(build_perceptual_network("vgg11", weights=None))
    calibration = calibrate(model, criterion, images[:8], quantile=0.99, map_kind="ssim")
    detector = Detector(model, criterion, calibration, info={"loss": {"perceptual_net": "vgg11"}})
    path = folder / "model.safetensors"
    detector.save(path)
    return path


def model_only(score: Callable[[np.ndarray], object], images: np.ndarray, batch: int,
               repeats: int) -> float:  # fmt: skip
    """Best images/s of ``score`` over batches of ``images`` (N, 3, S, S) uint8."""
    score(images[:batch].astype(np.float32) / 255)  # warm-up
    best = 0.0
    for _ in range(repeats):
        tic = time.perf_counter()
        for start in range(0, len(images), batch):
            score(images[start : start + batch].astype(np.float32) / 255)
        best = max(best, len(images) / (time.perf_counter() - tic))
    return best


def command(argv: list[str]) -> float:
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-m", "piade", *argv], check=True, capture_output=True)
    return time.perf_counter() - tic


def measure(name: str, model: Path, score: Callable[[np.ndarray], object], images: np.ndarray,
            files: list[Path], source: Path, work: Path,
            args: argparse.Namespace) -> list[dict[str, Any]]:  # fmt: skip
    """The model alone, each command of :data:`VARIANTS` and the one-image command, for ``model``
    (a model file, or an .onnx file: ``name`` "onnx ")."""
    records: list[dict[str, Any]] = [{"what": f"{name}model only",
                                      "images_per_s": model_only(score, images, args.batch_size,
                                                                 args.repeats)}]  # fmt: skip
    for flags in VARIANTS:
        seconds = min(
            command(["predict", str(model), str(source), "--out", str(work / "out"),
                     "--device", "cpu", *flags.split(), "--batch-size", str(args.batch_size)])
            for _ in range(args.repeats)
        )  # fmt: skip
        records.append(
            {"what": f"piade predict {name}{flags}", "images_per_s": len(files) / seconds}
        )
    records.append({"what": f"piade predict {name}(1 image)", "seconds": min(
        command(["predict", str(model), str(files[0]), "--out", str(work / "one"), "--device", "cpu"])
        for _ in range(args.repeats))})  # fmt: skip
    start_up = records[-1]["seconds"]  # a whole command on one image: mostly start-up
    for record in records[1 : 1 + len(VARIANTS)]:
        after = len(files) / record["images_per_s"] - start_up  # None: too few images to tell
        record["images_per_s_after_start_up"] = len(files) / after if after > 0 else None
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, help="a folder of images (default: write them)")
    parser.add_argument("--count", type=int, default=83)
    parser.add_argument("--side", type=int, default=900)
    parser.add_argument("--size", type=int, default=256, help="the model's image side")
    parser.add_argument("--model", type=Path, help="a model file (default: an untrained one)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--onnx", action="store_true", help="also the exported model, ONNX Runtime")
    args = parser.parse_args()
    keep_freed_memory()  # as the piade command does, so both sides run with the same allocator
    work = Path(tempfile.mkdtemp(prefix="piade-e2e-"))
    try:
        if args.images:
            files = sorted(p for p in args.images.rglob("*") if p.suffix.lower() == ".png")
        else:
            files = write_images(work / "images", args.count, args.side)
        source = args.images or work / "images"
        decoded = [read_rgb(str(p)) for p in files]
        size = args.size
        if args.model:
            size = Detector.load(args.model).image_size
        images = torch.stack([resize_image(image, size) for image in decoded])
        model = args.model or untrained_model(size, work, images)
        scorers: dict[str, tuple[Path, Callable[[np.ndarray], object]]] = {
            "": (model, TorchScorer(Detector.load(model)).score)
        }
        if args.onnx:
            export_onnx(Detector.load(model), work / "model.onnx")
            scorers["onnx "] = (work / "model.onnx", OnnxDetector.load(work / "model.onnx").score)
        records = []
        for name, (path, score) in scorers.items():
            records += measure(name, path, score, images.numpy(), files, source, work, args)
        records.append({"what": "piade --help", "seconds": command(["--help"])})
        setup = {"images": len(files), "side": decoded[0].shape[:2], "model_px": size,
                 "batch_size": args.batch_size, "torch_threads": torch.get_num_threads()}  # fmt: skip
        print(json.dumps({"setup": setup}, default=str))
        for record in records:
            print(json.dumps(record))
        print(f"\n{len(files)} images of {decoded[0].shape[1]}x{decoded[0].shape[0]} px, "
              f"{size} px model, batch {args.batch_size}")  # fmt: skip
        for record in records:
            if record["what"].endswith("model only"):
                base = record["images_per_s"]  # of the runtime of the rows that follow
            if "images_per_s" in record:
                rate = record["images_per_s"]
                line = (
                    f"{record['what']:54s} {rate:7.1f} images/s  {rate / base:6.1%} of model only"
                )
                if record.get("images_per_s_after_start_up"):
                    after = record["images_per_s_after_start_up"]
                    line += f"; after start-up {after:.1f} images/s, {after / base:.1%}"
                print(line)
            else:
                print(f"{record['what']:54s} {record['seconds']:7.2f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
