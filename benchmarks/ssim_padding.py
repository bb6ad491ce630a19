"""SSIM's symmetric border padding: a gather (``index_select``) against flipped slices (``cat``).

Times the forward and backward of :func:`piade.losses.ssim` at the paper's 120 px, batch 120, with
the padding done each way, in alternating blocks of one run (medians). The gather is what piade used
before the speed issue; ``piade.losses`` now pads with flipped slices (the gather remains for images
smaller than the padding). Both give the same values, which this script checks first.

    python benchmarks/ssim_padding.py
"""

from __future__ import annotations

import statistics
import time

import torch

from piade import losses
from piade.runtime import keep_freed_memory


def gather_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """The padding as piade did it before: a gather along each of the last two dims."""
    for dim in (-2, -1):
        x = losses._gather_symmetric_pad(x, pad, dim)
    return x


def main() -> None:
    keep_freed_memory()
    torch.manual_seed(0)
    target = torch.rand(120, 3, 120, 120)
    reconstruction = torch.rand(120, 3, 120, 120, requires_grad=True)
    sliced_pad = losses._symmetric_pad
    stats = torch.rand(2, 5, 120, 120)
    torch.testing.assert_close(gather_pad(stats, 5), sliced_pad(stats, 5), rtol=0, atol=0)

    def step() -> float:
        tic = time.perf_counter()
        losses.ssim(target, reconstruction)[0].sum().backward()
        return time.perf_counter() - tic

    times: dict[str, list[float]] = {"gather": [], "flipped slices": []}
    for _ in range(6):
        for name, pad in (("gather", gather_pad), ("flipped slices", sliced_pad)):
            losses._symmetric_pad = pad
            times[name].append(step())
    losses._symmetric_pad = sliced_pad
    for name, values in times.items():
        print(f"{name:>15}: SSIM forward + backward {statistics.median(values[1:]) * 1e3:.1f} ms")
    ratio = statistics.median(times["gather"][1:]) / statistics.median(times["flipped slices"][1:])
    print(f"flipped slices are {ratio:.2f}x as fast")


if __name__ == "__main__":
    main()
