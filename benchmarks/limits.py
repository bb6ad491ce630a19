"""The two denominators of ``speed.py``'s efficiencies: a theoretical peak and the best dense kernel.

(a) **Theoretical FP32 peak** = cores in use x sustained clock x FP32 FLOPs per cycle per core.

* Cores in use: ``torch.get_num_threads()`` (one thread per core, as piade runs).
* Sustained clock: measured, not read from ``/proc/cpuinfo`` (a virtual machine reports its
  nominal rate there): every core runs a chain of dependent integer additions at the same time,
  one addition per cycle, compiled at run time with the system's C compiler and called through
  ``ctypes`` (which releases the GIL); clock = additions / seconds, the median over the cores,
  the highest of three trials (a trial that another process interrupts reads low, and a low clock
  would flatter every efficiency). The additions add a register, not a constant: Intel's cores
  since Golden Cove (e.g. the Xeon "Emerald Rapids" of 2026-12-05) fold a chain of constant
  additions in the renamer and ran it at 2.2 additions per cycle, which read as a 6.7 GHz clock;
  register additions ran at 2.68 per ns there, the same as a chain of multiplications (3 cycles
  each) at 2.70 GHz.
  Without a C compiler the ``cpu MHz`` of ``/proc/cpuinfo`` is used and the output says so.
* FLOPs per cycle: 2 FMA units x vector lanes x 2 (an FMA is two FLOPs), for the widest vector
  ISA the CPU reports at run time (``/proc/cpuinfo`` flags): AVX-512 16 lanes, AVX2 + FMA 8,
  otherwise SSE 4 lanes without FMA. AMD's Zen 4 (family 0x19) runs 512-bit operations in two
  256-bit halves, so it counts as 8 lanes; Zen 5 (family 0x1A) has full 512-bit units. Two FMA
  units is right for AMD Zen and for Intel Xeon Gold and Platinum; some Xeon Silver and Bronze
  parts have one, and then this peak is twice the real one.

(b) **Best dense kernel**: the highest FP32 rate measured in the same run over square
``torch.mm`` of 1024 to 4096 and over the convolutions of the workload (each distinct shape of
one forward pass of the network and of the loss's perceptual network at the benchmarked size and
batch, channels_last, through oneDNN), best of three. Until 2026-12-08 the perceptual network's
convolutions were left out, although training and scoring run them: VGG-11's 64 -> 128 at
60 px ran at up to 160 GFLOP/s on the Zen 3 host, above every convolution of the detector in the
same run (127-137), so (b) was not the limit it is meant to be.
A convolution's FLOPs count only the kernel taps that fall on its input: at 8 px a 3 x 3
convolution with padding 1 spends 16 % of the taps torch's FlopCounterMode counts on zero
padding, which oneDNN need not compute, and counted that way it ran above the peak.

On a GPU, (a) is the FP32 rate of its CUDA cores and, for bf16 work, of its tensor cores, from
the device's SM count, its maximum SM clock (``nvidia-smi``) and the FLOPs per cycle per SM of its
architecture (:data:`GPU_FLOPS_PER_SM_CYCLE`).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

CHAIN_C = r"""
#include <stdint.h>
uint64_t chain(uint64_t n) {
    uint64_t x = 0, one = 1;
    for (uint64_t i = 0; i < n; i++) {
        __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                         "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0"
                         : "+r"(x) : "r"(one));
    }
    return x;
}
"""
ADDS_PER_ITERATION = 8
# FP32 FLOPs per cycle per SM by compute capability (major, minor): (CUDA cores, dense bf16 tensor)
GPU_FLOPS_PER_SM_CYCLE = {
    (7, 0): (128, 0),  # V100: no bf16 tensor cores
    (8, 0): (128, 2048),  # A100
    (8, 6): (256, 1024),  # A10, RTX 30
    (8, 9): (256, 1024),  # L4, L40, RTX 40
    (9, 0): (256, 4096),  # H100, H200
}


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    first = text.split("\n\n")[0]
    return {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())
    }


def vector_isa() -> tuple[str, int, bool]:
    """(name, FP32 lanes per operation, has FMA) of the widest vector ISA this CPU runs."""
    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    family = int(info.get("cpu family", "0") or 0)
    amd = "AMD" in info.get("vendor_id", "") + info.get("model name", "")
    if "avx512f" in flags:
        if amd and family == 0x19:
            return "AVX-512 (Zen 4: two 256-bit halves)", 8, True
        return "AVX-512", 16, True
    if "avx2" in flags and "fma" in flags:
        return "AVX2+FMA", 8, True
    return "SSE", 4, False


def _chain_library() -> Any | None:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="piade-clock-"))
    (folder / "chain.c").write_text(CHAIN_C)
    built = subprocess.run(
        [
            compiler,
            "-O2",
            "-shared",
            "-fPIC",
            "-o",
            str(folder / "chain.so"),
            str(folder / "chain.c"),
        ],
        capture_output=True,
    )
    if built.returncode != 0:
        return None
    library = ctypes.CDLL(str(folder / "chain.so"))
    library.chain.restype = ctypes.c_uint64
    library.chain.argtypes = [ctypes.c_uint64]
    return library


def sustained_clock_ghz(cores: int, seconds: float = 0.5) -> tuple[float, str]:
    """The clock every one of ``cores`` runs at while all are busy, and how it was found."""
    library = _chain_library()
    if library is None:
        mhz = float(_cpuinfo().get("cpu MHz", "nan"))
        return mhz / 1000, "cpu MHz of /proc/cpuinfo (no C compiler to measure it)"
    library.chain(1_000_000)  # warm-up
    tic = time.perf_counter()
    library.chain(10_000_000)
    n = max(1_000_000, int(10_000_000 * seconds / max(time.perf_counter() - tic, 1e-6)))
    rates: list[float] = []

    def run() -> None:
        start = time.perf_counter()
        library.chain(n)
        rates.append(n * ADDS_PER_ITERATION / (time.perf_counter() - start) / 1e9)

    trials = []
    for _ in range(3):
        rates.clear()
        threads = [threading.Thread(target=run) for _ in range(cores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        trials.append(statistics.median(rates))
    return max(trials), f"dependent additions on {cores} core(s) at once, best of 3"


def cpu_peak() -> dict[str, Any]:
    """Denominator (a) on the CPU, with every factor of it."""
    cores = torch.get_num_threads()
    isa, lanes, fma = vector_isa()
    flops_per_cycle = 2 * lanes * (2 if fma else 1)  # two vector units
    clock, how = sustained_clock_ghz(cores)
    return {
        "cores": cores,
        "clock_ghz": round(clock, 3),
        "clock_source": how,
        "vector_isa": isa,
        "fp32_flops_per_cycle": flops_per_cycle,
        "peak_gflops": round(cores * clock * flops_per_cycle, 1),
    }


def gpu_peak(device: torch.device) -> dict[str, Any]:
    """Denominator (a) on a CUDA device: FP32 CUDA cores and dense bf16 tensor cores."""
    props = torch.cuda.get_device_properties(device)
    key = (props.major, props.minor)
    fp32, bf16 = GPU_FLOPS_PER_SM_CYCLE.get(key, (128, 0))
    clock_mhz = None
    try:
        query = ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"]
        index = device.index or 0
        clock_mhz = float(
            subprocess.run(query, capture_output=True, text=True).stdout.split()[index]
        )
    except (OSError, ValueError, IndexError):
        clock_mhz = getattr(props, "clock_rate", 0) / 1000 or None  # kHz in some versions
    sms = props.multi_processor_count
    ghz = (clock_mhz or float("nan")) / 1000
    return {
        "sms": sms,
        "clock_ghz": round(ghz, 3),
        "compute_capability": f"{props.major}.{props.minor}",
        "known_architecture": key in GPU_FLOPS_PER_SM_CYCLE,
        "peak_gflops": round(sms * ghz * fp32, 1),
        "peak_bf16_gflops": round(sms * ghz * bf16, 1) if bf16 else None,
    }


def _best_of_three(run: Any, device: torch.device) -> float:
    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tic = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - tic

    once()
    return min(once() for _ in range(3))


def _valid_taps(
    size: int, kernel: int, stride: int, padding: int, dilation: int
) -> tuple[int, int]:
    """(output positions x kernel taps, of which inside the input) along one axis."""
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    inside = sum(
        0 <= o * stride - padding + k * dilation < size for o in range(out) for k in range(kernel)
    )
    return out * kernel, inside


def conv_flops(conv: nn.Conv2d, shape: tuple[int, ...]) -> tuple[float, float]:
    """FLOPs of one call of ``conv`` on an input of ``shape``: (as torch's FlopCounterMode counts
    them, every kernel tap; the taps that fall on the input rather than on its zero padding)."""
    n, _, h, w = shape
    per_tap = 2 * n * conv.out_channels * (conv.in_channels // conv.groups)
    axes = [
        _valid_taps(size, conv.kernel_size[i], conv.stride[i], conv.padding[i], conv.dilation[i])  # type: ignore[index]
        for i, size in enumerate((h, w))
    ]
    return per_tap * axes[0][0] * axes[1][0], per_tap * axes[0][1] * axes[1][1]


class ConvCalls:
    """Records every ``nn.Conv2d`` call of ``modules`` while active: (convolution, input shape)."""

    def __init__(self, *modules: nn.Module) -> None:
        self.modules, self.calls = modules, []
        self.hooks: list[Any] = []

    def __enter__(self) -> ConvCalls:
        def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
            self.calls.append((module, tuple(inputs[0].shape)))

        for root in self.modules:
            self.hooks += [m.register_forward_pre_hook(record) for m in root.modules()
                           if isinstance(m, nn.Conv2d)]  # fmt: skip
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self.hooks:
            hook.remove()

    def padding_flops(self) -> float:
        """Counted minus valid FLOPs over every call: the work spent on zero padding. A call
        that ran as a matrix product over the taps that meet its input (``piade.model.resnet
        .Conv2d`` at a one-pixel output) spent none, and FlopCounterMode counted its taps."""
        return sum(
            counted - valid
            for m, shape in self.calls
            if getattr(m, "matmul_window", lambda *size: None)(*shape[-2:]) is None
            for counted, valid in [conv_flops(m, shape)]
        )


def conv_shapes(
    model: nn.Module, images: torch.Tensor, *more: nn.Module
) -> list[tuple[nn.Conv2d, tuple[int, ...]]]:
    """Each distinct (convolution, input shape) of one eval-mode forward pass of ``model`` and of
    each module of ``more`` (e.g. the loss's perceptual network) on ``images``."""
    with ConvCalls(model, *more) as calls, torch.no_grad():
        for module in (model, *more):
            was_training = module.training
            module.eval()(images)
            module.train(was_training)
    seen: dict[tuple[Any, ...], tuple[nn.Conv2d, tuple[int, ...]]] = {}
    for conv, shape in calls.calls:
        key = (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
               conv.groups, shape)  # fmt: skip
        seen.setdefault(key, (conv, shape))
    return list(seen.values())


def best_kernel(
    model: nn.Module, images: torch.Tensor, device: torch.device, *more: nn.Module
) -> dict[str, Any]:
    """Denominator (b): the highest FP32 GFLOP/s over large matmuls and the convolutions of the
    network and of each module of ``more`` (those of the workload measured: the perceptual
    network's, whose 64- and 128-channel convolutions at full and half resolution run faster
    than any of the detector's)."""
    results: list[tuple[float, str]] = []
    for n in (1024, 2048, 4096):
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        seconds = _best_of_three(lambda a=a, b=b: torch.mm(a, b), device)
        results.append((2 * n**3 / seconds / 1e9, f"mm {n}"))
    with torch.no_grad():
        for conv, shape in conv_shapes(model, images, *more):
            x = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last)
            _, flops = conv_flops(conv, shape)  # taps on zero padding are not work
            seconds = _best_of_three(lambda conv=conv, x=x: conv(x), device)
            kh, kw = conv.kernel_size
            label = f"conv {conv.in_channels}->{conv.out_channels} {kh}x{kw} at {shape[-1]} px"
            results.append((flops / seconds / 1e9, label))
    rate, name = max(results)
    return {"best_kernel_gflops": round(rate, 1), "best_kernel": name}


def describe(peak: dict[str, Any]) -> str:
    """One line with the derivation of a peak."""
    if "sms" in peak:
        return (f"GPU peak: {peak['sms']} SMs x {peak['clock_ghz']} GHz -> FP32 "
                f"{peak['peak_gflops']} GFLOP/s, bf16 tensor {peak['peak_bf16_gflops']} GFLOP/s")  # fmt: skip
    return (
        f"CPU peak: {peak['cores']} cores x {peak['clock_ghz']} GHz ({peak['clock_source']}) x "
        f"{peak['fp32_flops_per_cycle']} FP32 FLOP/cycle ({peak['vector_isa']}, 2 FMA units) = "
        f"{peak['peak_gflops']} GFLOP/s"
    )


if __name__ == "__main__":  # print both denominators for the paper's network at 120 px
    from piade.config import ModelConfig
    from piade.losses import build_perceptual_network
    from piade.model import build_model

    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    device = torch.device("cpu")
    print(describe(cpu_peak()))
    network = build_model(ModelConfig(image_size=120), encoder_weights=None)
    network = network.to(memory_format=torch.channels_last)
    loss_network = build_perceptual_network("vgg11", weights=None)
    loss_network = loss_network.to(memory_format=torch.channels_last)
    print(best_kernel(network, torch.rand(32, 3, 120, 120), device, loss_network))
