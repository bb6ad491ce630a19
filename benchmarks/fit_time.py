"""Wall time of a whole ``piade.fit`` run with the paper's settings, on data shaped like a benchmark.

The images are synthetic (random uint8, held in memory) in the shape of one MVTec AD category (209
training images at 120 px, the size of *bottle*'s train/good) or one CIFAR-10 class (5000 training
images at 32 px): training time depends on the count and size of the images, not their content, and
no data set has to travel to the GPU machine. Decoding and resizing the real files is not included
(``piade fit`` caches them once; see docs/performance.md). Everything else is the real engine: the
paper's SE-ResNet18 with random initial weights, VGG-11 loss, Adam, batch 120, checkpoints every
10 epochs, calibration at the end. Prints one JSON line per run.

    python benchmarks/fit_time.py --device cuda --shape mvtec cifar10 --epochs 400 [--compile]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import torch

from piade.benchmark.cost import device_description
from piade.config import ModelConfig
from piade.runtime import keep_freed_memory
from piade.train.config import COMPILE_MODES, TrainConfig
from piade.train.run import fit

SHAPES = {"mvtec": (209, 120), "cifar10": (5000, 32)}  # training images, image size


class SyntheticImages:
    """``n`` random uint8 images (N, 3, size, size) with the item layout of piade's data sets."""

    def __init__(self, n: int, size: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, 3, size, size), generator=generator).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.images[index].float() / 255, "label": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", nargs="+", choices=sorted(SHAPES), default=["mvtec"])
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=120)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--compile", nargs="?", const="default", choices=COMPILE_MODES)
    parser.add_argument("--images", type=int, help="override the number of training images")
    args = parser.parse_args()
    keep_freed_memory()
    for shape in args.shape:
        n, size = SHAPES[shape]
        data = SyntheticImages(args.images or n, size)
        config = TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            encoder_weights=None,
            perceptual_weights=None,
            device=args.device,
            precision=args.precision,
            compile=args.compile,
        )
        with tempfile.TemporaryDirectory() as out:
            tic = time.perf_counter()
            result = fit(data, out, model_config=ModelConfig(image_size=size), train_config=config)
            seconds = time.perf_counter() - tic
            epochs = [json.loads(line) for line in open(f"{out}/metrics.jsonl")]
        device = next(result.model.parameters()).device
        steady = epochs[1:] or epochs  # the first epoch includes compilation and warm-up
        speeds = sorted(e["images_per_s"] for e in steady)
        record = {
            "shape": shape,
            "train_images": len(data),
            "image_size": size,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "precision": args.precision,
            "compile": args.compile,
            "seconds": round(seconds, 2),
            "first_epoch_seconds": round(epochs[0]["seconds"], 2),
            "median_epoch_images_per_s": round(speeds[len(speeds) // 2], 1),
            "epochs_in_median": len(speeds),  # all but the first, when there are several
            "last_loss": round(epochs[-1]["loss"], 5),
            "machine": device_description(device),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
