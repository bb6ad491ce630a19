"""Training and inference throughput of piade against two limits of this machine.

For each image size it measures, in one run:

* training images/s: the engine's full step (forward, the three-term loss, backward, Adam);
* inference images/s: scoring (forward with the longest vector, loss terms and anomaly maps);
* FLOPs per image of each, counted by ``torch.utils.flop_counter`` (matmuls and convolutions),
  less the convolution taps on zero padding (``limits.conv_flops``);
* two denominators (``limits.py``, docs/performance.md): (a) the theoretical FP32 peak of the cores
  in use (cores x clock measured under load x FLOPs per cycle of the vector ISA found at run
  time; on a GPU, its SMs x clock x FLOPs per cycle, bf16 tensor cores for bf16 work), and (b) the
  best dense kernel measured in the same run (large matmuls and the network's own convolutions);
* two efficiencies: achieved FLOP/s (images/s x FLOPs per image) / (a), and / (b). A figure above
  100 % of (a) cannot be right (a wrong clock, FLOP count or ISA): the script says so;
* peak memory (resident set size on CPU, the allocator's peak on CUDA).

Figures are medians over ``--repeats`` timed blocks after a warm-up step. It runs the engine's
settings (channels_last, glibc keeping freed memory; bf16 autocast on GPU); ``--without`` and
``--with`` change them. ``--compare OPTION`` times the settings with and without OPTION in
alternating blocks of one run and prints the median ratio: the fair way to judge one change on a
noisy machine (``keep-freed-memory`` is process-wide: compare it with two runs). ``compile`` is
``torch.compile`` of the training step, and for inference the detector's ``--compile`` scoring
(``CompiledScoring``: frozen weights), its compilation outside the timing; ``--modes infer`` skips
training. Prints one JSON line per configuration, then a table. Random weights (speed does not
depend on them), the paper's architecture (SE-ResNet18, VGG-11 perceptual features; ``--perceptual-net
vgg16`` for the VGG-16 features this project's runs use, 64 channels at full resolution).

    python benchmarks/speed.py                       # sizes 32, 120, 256 on the CPU (make bench)
    python benchmarks/speed.py --sizes 120 --compare channels-last
    python benchmarks/speed.py --sizes 120 --perceptual-net vgg16 --compare fused-distance
    python benchmarks/speed.py --sizes 120 256 --modes infer --compare compile   # scoring --compile
    python benchmarks/speed.py --sizes 32 --compare one-pixel-matmul  # the ResNet's 1-px outputs
    python benchmarks/speed.py --device cuda --sizes 120 256 --batch-size 120
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from limits import ConvCalls, best_kernel, cpu_peak, describe, gpu_peak
from torch.utils.flop_counter import FlopCounterMode

from piade import losses
from piade.benchmark.cost import device_description, peak_memory
from piade.config import ModelConfig
from piade.inference.scoring import CompiledScoring, score_images
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model, resnet
from piade.preprocess import to_signed
from piade.runtime import autocast_dtype, keep_freed_memory, resolve_device
from piade.train.loop import compiled_loss_terms, loss_terms

DEFAULT_BATCH = {32: 120, 120: 120, 256: 32}  # the paper's batch; 256 px: what fits a CPU budget
OPTIONS = (
    "channels-last",
    "keep-freed-memory",
    "fused-distance",
    "fused-adam",
    "inference-mode",
    "compile",
    "bf16",
    "kept-targets",
    "one-pixel-matmul",
)
# what `piade fit` and the detector use (kept-targets: fit only; scoring has no repeated images)
ENGINE = (
    "channels-last",
    "keep-freed-memory",
    "fused-distance",
    "kept-targets",
    "one-pixel-matmul",
)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(run: Callable[[], None], device: torch.device) -> float:
    synchronize(device)
    tic = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - tic


_FUSED_FEATURE_DISTANCE = losses.squared_feature_distance
_MATMUL_WINDOW = resnet.Conv2d.matmul_window


@contextmanager
def plain_forms(options: frozenset[str]) -> Iterator[None]:
    """Within: the formulas the options not chosen replace (autograd's feature distance; every
    ResNet convolution through the convolution kernel, one-pixel outputs included)."""
    if "fused-distance" not in options:  # the formula autograd differentiates itself
        losses.squared_feature_distance = _plain_feature_distance
    if "one-pixel-matmul" not in options:
        resnet.Conv2d.matmul_window = lambda self, height, width: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        losses.squared_feature_distance = _FUSED_FEATURE_DISTANCE
        resnet.Conv2d.matmul_window = _MATMUL_WINDOW  # type: ignore[method-assign]


def _plain_feature_distance(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (target - features).pow(2).mean(dim=1)


class Setup:
    """A network, loss, optimiser and batch for one image size and one set of options."""

    def __init__(
        self,
        size: int,
        batch: int,
        device: torch.device,
        options: frozenset[str],
        perceptual_net: str = "vgg11",
    ):
        self.options, self.device = options, device
        layout = torch.channels_last if "channels-last" in options else torch.contiguous_format
        self.model = build_model(ModelConfig(image_size=size), encoder_weights=None)
        self.model = self.model.to(device).to(memory_format=layout)
        self.criterion = ReconstructionLoss(build_perceptual_network(perceptual_net, weights=None))
        self.criterion = self.criterion.to(device).to(memory_format=layout)
        fused = {"fused": True} if "fused-adam" in options else {}
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=1e-3, weight_decay=1e-4, **fused
        )
        self.images = torch.rand(batch, 3, size, size, device=device)
        self.images = self.images.contiguous(memory_format=layout)
        self.amp = autocast_dtype("bf16" if "bf16" in options else "auto", device)
        self.targets = None  # the perceptual features of the batch, kept as `piade fit` keeps them
        if "kept-targets" in options:
            with torch.no_grad():
                self.targets = self.criterion.perceptual_features(to_signed(self.images))
        self.forward = compiled_loss_terms("default" if "compile" in options else None)
        # scoring: the detector's --compile path (frozen weights) or the eager pass
        self.score = (
            CompiledScoring(self.model, self.criterion) if "compile" in options else score_images
        )

    def forward_backward(self) -> None:
        with plain_forms(self.options):
            terms = self.forward(self.model, self.criterion, self.images, self.amp, self.targets)
            terms.total.mean().backward()

    def train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        self.forward_backward()
        self.optimizer.step()

    def infer_step(self) -> None:
        guard = torch.inference_mode() if "inference-mode" in self.options else torch.no_grad()
        with guard, plain_forms(self.options):
            if isinstance(self.score, CompiledScoring):
                self.score(self.images, self.amp)
            else:
                self.score(self.model, self.criterion, self.images, self.amp)

    def flops(self) -> dict[str, float]:
        """FLOPs per image of a training step and of scoring (eager; kept-targets lowers training's).

        Counted by FlopCounterMode, less the convolution taps that fall on zero padding
        (``limits.conv_flops``): exact for scoring; for training, each gradient a convolution
        computes (input, and weight for the network's own) is taken to waste what its forward did.
        """
        batch = len(self.images)
        train, infer = FlopCounterMode(display=False), FlopCounterMode(display=False)
        with plain_forms(self.options):  # padding_flops asks the modules how they ran
            with train, ConvCalls(self.model) as own, ConvCalls(self.criterion) as loss:
                terms = loss_terms(self.model, self.criterion, self.images, self.amp, self.targets)
                terms.total.mean().backward()
            self.optimizer.zero_grad(set_to_none=True)
            with infer, torch.no_grad(), ConvCalls(self.model, self.criterion) as scoring:
                score_images(self.model, self.criterion, self.images)
            wasted = 3 * own.padding_flops() + 2 * loss.padding_flops()
            wasted_scoring = scoring.padding_flops()
        return {
            "train": (train.get_total_flops() - wasted) / batch,
            "infer": (infer.get_total_flops() - wasted_scoring) / batch,
        }


def measure(
    size: int,
    batch: int,
    device: torch.device,
    option_sets: list[frozenset[str]],
    repeats: int,
    steps: int,
    peak_gflops: float,
    perceptual_net: str = "vgg11",
    modes: tuple[str, ...] = ("train", "infer"),
) -> list[dict]:
    """Records for every option set and mode, timed in alternating blocks of one run."""
    setups = [Setup(size, batch, device, options, perceptual_net) for options in option_sets]
    flops = [setup.flops() for setup in setups]  # kept-targets does less work
    first = setups[0]
    best = best_kernel(first.model, first.images, device, first.criterion.perceptual_net)
    records = []
    for mode in modes:
        samples: dict[int, list[float]] = {i: [] for i in range(len(setups))}
        peaks = {}
        for i, setup in enumerate(setups):  # warm-up (and compilation) outside the timing
            step = setup.train_step if mode == "train" else setup.infer_step
            with peak_memory(device) as peak:
                step()
                step()
            peaks[i] = peak
        for _ in range(repeats):
            for i, setup in enumerate(setups):
                step = setup.train_step if mode == "train" else setup.infer_step
                seconds = timed(lambda step=step: [step() for _ in range(steps)], device)
                samples[i].append(batch * steps / seconds)
        for i, setup in enumerate(setups):
            speeds = samples[i]
            gflop = flops[i][mode] / 1e9
            achieved = statistics.median(speeds) * gflop
            records.append(
                {
                    "image_size": size,
                    "mode": mode,
                    "batch_size": batch,
                    "settings": "+".join(sorted(setup.options)) or "plain",
                    "images_per_s": statistics.median(speeds),
                    "gflop_per_image": gflop,
                    "achieved_gflops": achieved,
                    "peak_gflops": peak_gflops,
                    "efficiency_vs_peak": achieved / peak_gflops,
                    **best,
                    "efficiency_vs_best_kernel": achieved / best["best_kernel_gflops"],
                    "repeats": repeats,
                    "peak_rss_mb": round(peaks[i].rss_mb, 1),
                    "peak_cuda_mb": peaks[i].cuda_mb,
                    "samples_images_per_s": [round(s, 2) for s in speeds],
                }
            )
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 120, 256])
    parser.add_argument("--batch-size", type=int, help="default: 120 (32 at 256 px)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per figure")
    parser.add_argument("--steps", type=int, default=1, help="steps per timed block")
    parser.add_argument("--with", dest="add", nargs="*", default=[], choices=OPTIONS)
    parser.add_argument("--without", nargs="*", default=[], choices=OPTIONS)
    parser.add_argument(
        "--perceptual-net",
        choices=("vgg11", "vgg16"),
        default="vgg11",
        help="the perceptual network's first 4 modules (vgg16: this project's weights file)",
    )
    parser.add_argument(
        "--compare", choices=OPTIONS, help="time the settings with and without this option"
    )
    parser.add_argument(
        "--modes", nargs="+", choices=("train", "infer"), default=["train", "infer"]
    )
    args = parser.parse_args()
    if args.compare == "keep-freed-memory":  # a heap grown once serves the other setting too
        parser.error(
            "keep-freed-memory is process-wide: compare two runs, one with "
            "--without keep-freed-memory"
        )
    device = resolve_device(args.device)
    torch.manual_seed(0)
    base = (frozenset(ENGINE) | set(args.add)) - set(args.without)
    if "keep-freed-memory" in base and device.type == "cpu":
        keep_freed_memory()
    option_sets = [base]
    if args.compare:
        option_sets = [base - {args.compare}, base | {args.compare}]
    limit = gpu_peak(device) if device.type == "cuda" else cpu_peak()
    bf16 = device.type == "cuda" and autocast_dtype("auto", device) == torch.bfloat16
    peak = (
        limit["peak_bf16_gflops"]
        if bf16 and limit.get("peak_bf16_gflops")
        else limit["peak_gflops"]
    )
    print(json.dumps({"machine": device_description(device), "peak": limit}))
    records = []
    for size in args.sizes:
        batch = args.batch_size or DEFAULT_BATCH.get(size, 32)
        for record in measure(size, batch, device, option_sets, args.repeats, args.steps, peak,
                              args.perceptual_net, tuple(args.modes)):  # fmt: skip
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v
                              for k, v in record.items()}), flush=True)  # fmt: skip
            records.append(record)
    print()
    print(describe(limit))
    print(f"{'size':>5} {'mode':>5} {'batch':>5} {'img/s':>8} {'GFLOP/img':>9} {'GFLOP/s':>8} "
          f"{'vs peak':>7} {'best':>7} {'vs best':>7} {'peak MB':>8}  settings")  # fmt: skip
    for r in records:
        print(
            f"{r['image_size']:>5} {r['mode']:>5} {r['batch_size']:>5} {r['images_per_s']:>8.1f} "
            f"{r['gflop_per_image']:>9.3f} {r['achieved_gflops']:>8.1f} "
            f"{r['efficiency_vs_peak']:>7.1%} {r['best_kernel_gflops']:>7.1f} "
            f"{r['efficiency_vs_best_kernel']:>7.1%} "
            f"{r['peak_cuda_mb'] or r['peak_rss_mb']:>8.0f}  {r['settings']}"
        )
    for r in records:
        if r["efficiency_vs_peak"] > 1:
            print(f"BUG: {r['image_size']} px {r['mode']} runs at {r['efficiency_vs_peak']:.0%} of "
                  "the theoretical peak: the clock, the FLOP count or the ISA is wrong")  # fmt: skip
    best = max((r["best_kernel_gflops"], r["best_kernel"]) for r in records)
    if best[0] > peak:
        print(f"BUG: the best kernel ({best[1]}, {best[0]:.0f} GFLOP/s) beats the theoretical peak")
    if args.compare:
        print(f"\n{args.compare}: speed with / without (median of paired blocks)")
        for off, on in zip(records[::2], records[1::2], strict=True):
            pairs = zip(on["samples_images_per_s"], off["samples_images_per_s"], strict=True)
            ratio = statistics.median(a / b for a, b in pairs)
            print(f"{off['image_size']:>5} {off['mode']:>5}  {ratio:.2f}x")


if __name__ == "__main__":
    main()
