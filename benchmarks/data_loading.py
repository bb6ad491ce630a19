"""How much does piade's data loading cost next to tensors already in memory?

Measures, on the MVTec AD train set of one category (default: bottle) at 120 px:

* the first pass: decoding and resizing every image (no cache; with ``cache_dir`` writing the
  cache; then reading it back);
* epoch time of a ``DataLoader`` (batch 120, shuffle) over the piade data set versus a
  ``TensorDataset`` of random tensors of the same shape, (a) iterating only and (b) with a training
  step (``piade.build_model(piade.ModelConfig(image_size=...))``, MSE on the reconstruction, Adam;
  a small convolutional autoencoder when piade's model cannot be imported).

Epochs of the two data sets alternate, after one warm-up epoch each; medians are reported with the
ratio real / tensor (target: <= 1.15). Usage::

    python benchmarks/data_loading.py --root /path/to/mvtec_ad [--category bottle] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from piade.data import ImageDataset, LoadOptions, build_index, load_samples


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, help="MVTec AD root (the folder holding categories)")
    parser.add_argument("--category", default="bottle")
    parser.add_argument("--image-size", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=20, help="timed iteration epochs")
    parser.add_argument("--train-repeats", type=int, default=3, help="timed training epochs")
    parser.add_argument("--decode-repeats", type=int, default=3, help="timed first passes")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


def time_decoding(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds to decode and resize the train set: uncached, writing a cache, reading it."""
    index = build_index("mvtec", args.root, args.category)
    options = LoadOptions(image_size=args.image_size)
    uncached = [
        _seconds(lambda: load_samples(index.train, options)) for _ in range(args.decode_repeats)
    ]
    with tempfile.TemporaryDirectory() as cache:
        cached = LoadOptions(image_size=args.image_size, cache_dir=cache)
        write = _seconds(lambda: load_samples(index.train, cached))
        read = [
            _seconds(lambda: load_samples(index.train, cached)) for _ in range(args.decode_repeats)
        ]
    return {
        "images": len(index.train),
        "uncached_s": uncached,
        "cache_read_s": read,
        "uncached_first_s": uncached[0],
        "uncached_median_s": statistics.median(uncached),
        "cache_write_s": write,
        "cache_read_median_s": statistics.median(read),
    }


def _seconds(work: Callable[[], object]) -> float:
    tic = time.perf_counter()
    work()
    return time.perf_counter() - tic


def images_of(batch: Any) -> torch.Tensor:
    return batch["image"] if isinstance(batch, dict) else batch[0]


def build_model(image_size: int) -> tuple[nn.Module, str]:
    """piade's network when importable, else a small convolutional autoencoder."""
    try:
        import piade

        model = piade.build_model(piade.ModelConfig(image_size=image_size))
        return model, f"piade.build_model(ModelConfig(image_size={image_size}))"
    except Exception as error:  # the model code may be mid-change; the benchmark still runs
        print(
            f"piade.build_model unavailable ({error!r}); using a small autoencoder", file=sys.stderr
        )
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1), nn.Tanh(),
        )  # fmt: skip
        return model, "small conv autoencoder (piade model not importable)"


def reconstruction(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    out = model(images)
    return out.reconstruction if hasattr(out, "reconstruction") else out


def run_epoch(
    loader: DataLoader[Any], step: Callable[[torch.Tensor], None] | None, device: torch.device
) -> float:
    """Seconds for one pass over ``loader``, calling ``step`` on every batch when given."""
    tic = time.perf_counter()
    for batch in loader:
        images = images_of(batch).to(device, non_blocking=True)
        if step is not None:
            step(images)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tic


def make_step(model: nn.Module, device: torch.device) -> Callable[[torch.Tensor], None]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.to(device).train()

    def step(images: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = F.mse_loss(reconstruction(model, images), images * 2 - 1)
        loss.backward()
        optimizer.step()

    return step


def compare(
    datasets: dict[str, Dataset[Any]],
    args: argparse.Namespace,
    repeats: int,
    step: Callable[[torch.Tensor], None] | None,
) -> dict[str, Any]:
    """Median epoch seconds of each data set, epochs alternating after one warm-up each."""
    device = torch.device(args.device)
    loaders = {
        name: DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers)
        for name, ds in datasets.items()
    }
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for loader in loaders.values():
        run_epoch(loader, step, device)  # warm-up
    for _ in range(repeats):
        for name, loader in loaders.items():
            times[name].append(run_epoch(loader, step, device))
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"epochs_s": times, "median_s": medians, "ratio": medians["real"] / medians["tensor"]}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.root is None:
        parser.print_usage()
        print("nothing measured: give --root, the MVTec AD folder (see --help)", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    report: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    report["first_pass"] = time_decoding(args)
    index = build_index("mvtec", args.root, args.category)
    real = load_samples(index.train, LoadOptions(image_size=args.image_size))
    tensor = TensorDataset(torch.rand(len(real), 3, args.image_size, args.image_size))
    datasets: dict[str, Dataset[Any]] = {"real": real, "tensor": tensor}
    report["iterate"] = compare(datasets, args, args.repeats, None)
    model, description = build_model(args.image_size)
    report["model"] = description
    report["train"] = compare(
        datasets, args, args.train_repeats, make_step(model, torch.device(args.device))
    )
    print_report(report, real)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def print_report(report: dict[str, Any], real: ImageDataset) -> None:
    first = report["first_pass"]
    print(f"machine: {report['machine']}")
    print(f"data: {len(real)} images, {tuple(real.images.shape)} uint8 in memory")
    print(
        f"first pass (decode + resize, {first['images']} images): first "
        f"{first['uncached_first_s']:.3f} s, median {first['uncached_median_s']:.3f} s; "
        f"writing cache {first['cache_write_s']:.3f} s; reading cache "
        f"{first['cache_read_median_s']:.3f} s"
    )
    for key, title in (
        ("iterate", "(a) iteration only"),
        ("train", f"(b) training step, {report['model']}"),
    ):
        part = report[key]
        print(
            f"{title}: real {part['median_s']['real']:.4f} s/epoch, tensor "
            f"{part['median_s']['tensor']:.4f} s/epoch, ratio {part['ratio']:.3f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
