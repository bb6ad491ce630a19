"""Training and inference throughput of piade against this machine's own dense matmul rate.

For each image size it measures, in one run:

* training images/s: the full step (forward, the three-term loss, backward, Adam);
* inference images/s: scoring (forward with the longest vector, loss terms and anomaly maps);
* FLOPs per image of each, counted by ``torch.utils.flop_counter`` (matmuls and convolutions);
* the machine's dense float32 matmul rate (square ``torch.mm``), measured in the same run;
* the efficiency ratio: achieved FLOP/s (images/s x FLOPs per image) / matmul FLOP/s;
* peak memory (resident set size on CPU, the allocator's peak on CUDA).

Every timing is the median of ``--repeats`` timed blocks after a warm-up step. It prints one JSON
line per configuration, then a table. The network uses random weights (speed does not depend on
them) and the paper's architecture (SE-ResNet18, VGG-11 perceptual features).

    python benchmarks/speed.py                       # sizes 32, 120, 256 on the CPU (make bench)
    python benchmarks/speed.py --device cuda --sizes 120 --batch-size 120
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from piade.benchmark.cost import device_description, peak_memory
from piade.config import ModelConfig
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model
from piade.preprocess import to_signed
from piade.runtime import resolve_device
from piade.scoring import score_images

DEFAULT_BATCH = {32: 120, 120: 120, 256: 32}  # the paper's batch; 256 px: what fits a CPU budget


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(run: Callable[[], None], device: torch.device, repeats: int) -> float:
    """Median wall time of ``run`` over ``repeats`` calls, after one warm-up call."""
    run()
    synchronize(device)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        run()
        synchronize(device)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def matmul_gflops(device: torch.device, repeats: int) -> float:
    """This machine's dense float32 matmul rate, GFLOP/s (median)."""
    n = 2048 if device.type == "cpu" else 8192
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    seconds = median_seconds(lambda: torch.mm(a, b), device, max(repeats, 5))
    return 2 * n**3 / seconds / 1e9


def counted_flops(run: Callable[[], None]) -> float:
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return float(counter.get_total_flops())


def measure(
    size: int, batch: int, device: torch.device, repeats: int, steps: int, variant: set[str]
) -> list[dict]:
    """The train and infer records of one image size; ``variant`` names the optimisations on."""
    model = build_model(ModelConfig(image_size=size), encoder_weights=None).to(device)
    criterion = ReconstructionLoss(build_perceptual_network("vgg11", weights=None)).to(device)
    fused = {"fused": True} if "fused-adam" in variant else {}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4, **fused)
    images = torch.rand(batch, 3, size, size, device=device)
    if "channels-last" in variant:
        model = model.to(memory_format=torch.channels_last)
        criterion = criterion.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def forward_backward() -> None:
        out = model(images)
        criterion(to_signed(images), out.reconstruction).total.mean().backward()

    def train_steps() -> None:
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            forward_backward()
            optimizer.step()

    def infer_steps() -> None:
        for _ in range(steps):
            score_images(model, criterion, images)

    model.train()
    flops = {"train": counted_flops(forward_backward) / batch}
    optimizer.zero_grad(set_to_none=True)
    flops["infer"] = counted_flops(lambda: score_images(model, criterion, images)) / batch
    records = []
    for mode, run in (("train", train_steps), ("infer", infer_steps)):
        with peak_memory(device) as peak:
            seconds = median_seconds(run, device, repeats)
        records.append(
            {
                "image_size": size,
                "mode": mode,
                "batch_size": batch,
                "images_per_s": batch * steps / seconds,
                "gflop_per_image": flops[mode] / 1e9,
                "peak_rss_mb": round(peak.rss_mb, 1),
                "peak_cuda_mb": peak.cuda_mb,
            }
        )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 120, 256])
    parser.add_argument("--batch-size", type=int, help="default: 120 (32 at 256 px)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per figure")
    parser.add_argument("--steps", type=int, default=1, help="steps per timed block")
    parser.add_argument(
        "--variant",
        nargs="*",
        default=[],
        choices=("channels-last", "fused-adam"),
        help="optimisations to try (recorded in docs/performance.md)",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    print(json.dumps({"machine": device_description(device)}))
    records = []
    for size in args.sizes:
        batch = args.batch_size or DEFAULT_BATCH.get(size, 32)
        rate = matmul_gflops(device, args.repeats)  # next to each size: the machine drifts
        for record in measure(size, batch, device, args.repeats, args.steps, set(args.variant)):
            record["variant"] = "+".join(sorted(args.variant)) or "eager"
            record["matmul_gflops"] = rate
            record["achieved_gflops"] = record["images_per_s"] * record["gflop_per_image"]
            record["efficiency"] = record["achieved_gflops"] / rate
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                              for k, v in record.items()}), flush=True)  # fmt: skip
            records.append(record)
    print()
    print(f"{'size':>5} {'mode':>5} {'batch':>5} {'img/s':>8} {'GFLOP/img':>9} "
          f"{'GFLOP/s':>8} {'matmul':>8} {'eff.':>6} {'peak MB':>8}")  # fmt: skip
    for r in records:
        print(
            f"{r['image_size']:>5} {r['mode']:>5} {r['batch_size']:>5} {r['images_per_s']:>8.1f} "
            f"{r['gflop_per_image']:>9.3f} {r['achieved_gflops']:>8.1f} "
            f"{r['matmul_gflops']:>8.1f} {r['efficiency']:>6.1%} "
            f"{r['peak_cuda_mb'] or r['peak_rss_mb']:>8.0f}"
        )


if __name__ == "__main__":
    main()
