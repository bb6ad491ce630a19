"""How fast the training step could be: every convolution it runs, replayed alone.

``speed.py`` reports the training step's efficiency against (b), the best dense kernel of the same
run. This script asks what stands between the two. It records every convolution of one training
step (``aten.convolution`` forward, ``aten.convolution_backward`` with the gradients it computes:
the input's, the weight's), timing each inside the step, then replays each call alone on fresh
tensors of the same shapes and layouts (the best of three). Per pass it prints the FLOPs (the taps
on zero padding left out, as ``limits.conv_flops`` counts them), the seconds inside the step and
alone, and the rate alone against (b). A backward call that computes both gradients is timed
once in the step, and that time is split evenly between them; alone, each is timed by itself. Then
the bound: the step's FLOPs (``speed.py``'s count) divided by the time its convolutions take alone
is the most the step can reach with these kernels if everything else in it cost nothing
(element-wise work, normalisation, pooling, Adam, and the matrix products: the routing's and the
ResNet's one-pixel outputs, ``piade.model.resnet.Conv2d``, which are not replayed).

    python benchmarks/conv_bound.py                        # 120 px, batch 120, VGG-11 features
    python benchmarks/conv_bound.py --perceptual-net vgg16 # the features this project's runs use
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from typing import Any, NamedTuple

import torch
from limits import _best_of_three, _valid_taps, best_kernel, cpu_peak, describe
from speed import ENGINE, Setup
from torch.utils._python_dispatch import TorchDispatchMode

from piade.runtime import keep_freed_memory

PASSES = ("forward", "input gradient", "weight gradient")
# convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
# convolution_backward(grad, input, weight, bias_sizes, stride, padding, dilation, transposed,
#                      output_padding, groups, output_mask)


def valid_flops(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    stride: list[int],
    padding: list[int],
    dilation: list[int],
    transposed: bool,
    groups: int,
) -> float:
    """FLOPs of one forward convolution, counting only the taps that meet the input (for a
    transposed convolution: that land inside its output)."""
    n, _, *spatial = input_shape
    if transposed:  # weight (C_in, C_out / groups, k, k): each input pixel scatters k x k taps
        c_in, c_out_per_group, *kernel = weight_shape
        per_tap = 2 * n * c_in * c_out_per_group
    else:  # weight (C_out, C_in / groups, k, k)
        c_out, c_in_per_group, *kernel = weight_shape
        per_tap = 2 * n * c_out * c_in_per_group
    taps = 1
    for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True):
        if transposed:  # input position i, tap j -> output i*s - p + j*d, kept if inside
            out = (size - 1) * s - 2 * p + d * (k - 1) + 1
            taps *= sum(0 <= i * s - p + j * d < out for i in range(size) for j in range(k))
        else:
            taps *= _valid_taps(size, k, s, p, d)[1]
    return float(per_tap * taps)


class Call(NamedTuple):
    """One recorded convolution call: which pass, its FLOPs, its time in the step, its replay."""

    kind: str
    flops: float
    seconds: float
    replay: Any
    label: str


class Spec(NamedTuple):
    """What a replay needs of a tensor: its shape, and its strides where it is dense."""

    shape: tuple[int, ...]
    stride: tuple[int, ...] | None  # None: contiguous (e.g. an expanded filter)
    dtype: torch.dtype

    def make(self) -> torch.Tensor:
        """A tensor of this shape and layout, filled with noise."""
        if self.stride is None:
            return torch.randn(self.shape, dtype=self.dtype)
        return torch.empty_strided(self.shape, self.stride, dtype=self.dtype).normal_()


def _spec(t: torch.Tensor | None) -> Spec | None:
    if t is None:
        return None
    dense = t.is_contiguous() or t.is_contiguous(memory_format=torch.channels_last)
    return Spec(tuple(t.shape), tuple(t.stride()) if dense else None, t.dtype)


def _describe(x: torch.Tensor, w: torch.Tensor, transposed: bool, groups: int) -> str:
    kind = "transposed " if transposed else ("depthwise " if groups > 1 else "")
    c_in, c_out = (w.shape[0], w.shape[1] * groups) if transposed else (x.shape[1], w.shape[0])
    kernel = "x".join(str(k) for k in w.shape[2:])
    return f"{kind}{c_in}->{c_out} {kernel} at {x.shape[-2]}x{x.shape[-1]}"


class RecordConvolutions(TorchDispatchMode):
    """Records and times every convolution (and its backward) run while active."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func not in (torch.ops.aten.convolution.default,
                        torch.ops.aten.convolution_backward.default):  # fmt: skip
            return func(*args, **kwargs)
        tic = time.perf_counter()
        out = func(*args, **kwargs)
        seconds = time.perf_counter() - tic
        if func is torch.ops.aten.convolution.default:
            x, w, bias, stride, padding, dilation, transposed, _, groups = args
            flops = valid_flops(x.shape, w.shape, stride, padding, dilation, transposed, groups)
            fresh = (_spec(x), _spec(w), _spec(bias))
            replay = (func, (*fresh, *args[3:]))
            self.calls.append(Call("forward", flops, seconds, replay,
                                   _describe(x, w, transposed, groups)))  # fmt: skip
            return out
        grad, x, w, _, stride, padding, dilation, transposed, _, groups, mask = args
        flops = valid_flops(x.shape, w.shape, stride, padding, dilation, transposed, groups)
        label = _describe(x, w, transposed, groups)
        # each gradient alone, so the two are timed apart (the step computes them in one call)
        for index, kind in ((0, "input gradient"), (1, "weight gradient")):
            if mask[index]:
                only = [i == index for i in range(3)]
                fresh = (_spec(grad), _spec(x), _spec(w))
                replay = (func, (*fresh, *args[3:10], only))
                share = seconds / sum(mask[:2])  # the step's time, split evenly between the two
                self.calls.append(Call(kind, flops, share, replay, label))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=120)
    parser.add_argument("--perceptual-net", choices=("vgg11", "vgg16"), default="vgg11")
    args = parser.parse_args()
    keep_freed_memory()
    torch.manual_seed(0)
    device = torch.device("cpu")
    setup = Setup(args.size, args.batch_size, device, frozenset(ENGINE), args.perceptual_net)
    step_flops = setup.flops()["train"] * args.batch_size
    for _ in range(2):  # warm-up: memory, oneDNN's kernels
        setup.train_step()
    steps = []
    for _ in range(3):
        tic = time.perf_counter()
        setup.train_step()
        steps.append(time.perf_counter() - tic)
    step = statistics.median(steps)
    with RecordConvolutions() as recorder:
        setup.train_step()
    best = best_kernel(setup.model, setup.images, device, setup.criterion.perceptual_net)
    b = best["best_kernel_gflops"]
    alone: list[float] = []
    with torch.no_grad():
        for call in recorder.calls:
            func, specs = call.replay
            replay_args = tuple(a.make() if isinstance(a, Spec) else a for a in specs)
            alone.append(_best_of_three(lambda f=func, a=replay_args: f(*a), device))
    peak = cpu_peak()
    totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for call, seconds in zip(recorder.calls, alone, strict=True):
        total = totals[call.kind]
        total[0] += 1
        total[1] += call.flops
        total[2] += call.seconds
        total[3] += seconds
    conv_alone = sum(alone)
    conv_in_step = sum(call.seconds for call in recorder.calls)
    record = {
        "image_size": args.size,
        "batch_size": args.batch_size,
        "perceptual_net": args.perceptual_net,
        "step_seconds": round(step, 3),
        "step_gflop": round(step_flops / 1e9, 1),
        "step_efficiency_vs_best_kernel": round(step_flops / step / 1e9 / b, 4),
        "convolutions_in_step_seconds": round(conv_in_step, 3),
        "convolutions_alone_seconds": round(conv_alone, 3),
        "bound_vs_best_kernel": round(step_flops / conv_alone / 1e9 / b, 4),
        **best,
        "peak_gflops": peak["peak_gflops"],
        "passes": {
            kind: {
                "calls": t[0],
                "gflop": round(t[1] / 1e9, 2),
                "in_step_s": round(t[2], 3),
                "alone_s": round(t[3], 3),
            }
            for kind, t in totals.items()
        },
        "calls": [
            {
                "pass": c.kind,
                "conv": c.label,
                "gflop": round(c.flops / 1e9, 3),
                "in_step_ms": round(1e3 * c.seconds, 1),
                "alone_ms": round(1e3 * s, 1),
            }
            for c, s in zip(recorder.calls, alone, strict=True)
        ],
    }
    print(json.dumps(record))
    print()
    print(describe(peak))
    print(f"(b) best kernel: {b} GFLOP/s ({best['best_kernel']})")
    print(f"\n{args.size} px, batch {args.batch_size}, {args.perceptual_net} features: "
          f"one training step {step:.2f} s, {step_flops / 1e9:.0f} GFLOP "
          f"({step_flops / step / 1e9 / b:.1%} of (b))")  # fmt: skip
    print(f"{'pass':<16} {'calls':>5} {'GFLOP':>7} {'in step s':>9} {'alone s':>8} "
          f"{'GFLOP/s alone':>13} {'vs (b)':>7}")  # fmt: skip
    for kind in PASSES:
        if kind in totals:
            n, flops, in_step, by_itself = totals[kind]
            rate = flops / by_itself / 1e9
            print(f"{kind:<16} {n:>5} {flops / 1e9:>7.1f} {in_step:>9.2f} {by_itself:>8.2f} "
                  f"{rate:>13.1f} {rate / b:>7.1%}")  # fmt: skip
    print(f"\nconvolutions: {conv_in_step:.2f} s of the step's {step:.2f} s "
          f"({conv_in_step / step:.0%}); alone {conv_alone:.2f} s")  # fmt: skip
    print(f"bound: with nothing but its convolutions, at their speed alone, the step would reach "
          f"{step_flops / conv_alone / 1e9 / b:.1%} of (b)")  # fmt: skip
    slowest = sorted(zip(recorder.calls, alone, strict=True), key=lambda p: -p[1])[:8]
    print("\nslowest calls alone:")
    for call, seconds in slowest:
        rate = call.flops / seconds / 1e9
        print(f"  {call.kind:<16} {call.label:<32} {1e3 * seconds:7.1f} ms  {rate:6.1f} GFLOP/s "
              f"({rate / b:.0%} of (b))")  # fmt: skip


if __name__ == "__main__":
    main()
