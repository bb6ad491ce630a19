"""Where and how tensors run: device choice, autocast precision, seeding, DDP process groups, and
whether the CPU cores are already busy."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import platform
import random
import sys
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from piade.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
GLIBC_DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_MAX: 65536}


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` → the first CUDA device, else Apple's MPS, else the CPU; or cpu, cuda[:N], mps."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as error:
        raise ConfigError(
            f"--device {spec!r} is not a device; use auto, cpu, cuda[:N] or mps"
        ) from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {spec}: no CUDA device is available here; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {spec}: MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device {spec!r}: use auto, cpu, cuda[:N] or mps")
    return device


def keep_freed_memory(enable: bool = True) -> bool:
    """Let glibc's malloc reuse freed memory for large tensors instead of unmapping it.

    By default glibc serves every allocation above 32 MiB with a fresh ``mmap`` and returns it to
    the system on free, so each large activation or gradient of a CPU training step is paid again in
    page faults. Keeping all allocations on the heap (``M_MMAP_MAX`` 0) and trimming the heap only
    above 2 GiB free (``M_TRIM_THRESHOLD``) made CPU training about 1.6x faster at 120 px on the
    development machine (docs/performance.md). The setting is process-wide and the process keeps
    its peak memory until it exits, so the ``piade`` command turns it on and library users opt in;
    ``enable=False`` restores glibc's defaults and returns the kept free memory (``malloc_trim``). Returns False (and does nothing) where the C library
    is not glibc, or when the environment sets ``PIADE_MALLOC=default``.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if enable and os.environ.get("PIADE_MALLOC", "").lower() == "default":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    values = {M_MMAP_MAX: 0, M_TRIM_THRESHOLD: 2**31 - 1} if enable else GLIBC_DEFAULTS
    done = all(libc.mallopt(option, value) == 1 for option, value in values.items())
    if not enable:  # give back what the setting kept: later large blocks are mapped afresh again
        libc.malloc_trim(0)
    return done


def memory_format(device: torch.device) -> torch.memory_format:
    """The tensor layout piade's networks run in on ``device``.

    ``channels_last`` (NHWC) on CPU and CUDA, whose convolution libraries (oneDNN, cuDNN) prefer it:
    1.8x faster inference and 1.3x faster training at 120 px on the development CPU
    (docs/performance.md); the default layout elsewhere.
    """
    return torch.channels_last if device.type in ("cpu", "cuda") else torch.contiguous_format


def cpu_supports_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), which oneDNN uses for bf16."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("\n\n")[0]  # the first processor
    except OSError:  # not Linux: ask oneDNN
        probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        return bool(probe()) if probe is not None else False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or None for full fp32.

    ``auto`` is bf16 on CUDA devices that support it, fp16 on other CUDA devices, fp32 elsewhere
    (bf16 on the CPU is not the default: docs/performance.md). ``bf16`` on the CPU needs bf16
    instructions (:func:`cpu_supports_bf16`); ``fp16`` is for CUDA devices only.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if device.type == "cpu" and precision in ("bf16", "fp16"):
        if precision == "fp16":
            raise ConfigError("--precision fp16 is for CUDA devices; on the CPU use bf16 or fp32")
        if not cpu_supports_bf16():
            raise ConfigError(
                "--precision bf16: this CPU has no bf16 instructions (AVX512-BF16 or AMX), so"
                " bf16 would be slower than fp32 here; use --precision fp32"
            )
        return torch.bfloat16
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def cpu_times(cpus: Collection[int], stat: Path = Path("/proc/stat")) -> dict[int, tuple[int, int]]:
    """(busy, total) clock ticks so far of each CPU in ``cpus``, read from ``stat`` (Linux's
    /proc/stat); empty where it cannot be read. Idle and I/O wait are not busy; time the hypervisor
    stole is neither (it counts in no total)."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return {}
    times = {}
    for line in lines:
        name, *fields = line.split() or [""]
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        if len(fields) < 7 or not all(f.isdigit() for f in fields[:7]):
            continue
        user, nice, system, idle, iowait, irq, softirq = (int(f) for f in fields[:7])
        busy = user + nice + system + irq + softirq
        times[int(name[3:])] = (busy, busy + idle + iowait)
    return times


def busy_cores(interval: float = 0.15) -> tuple[float, int] | None:
    """How many of the CPUs this process may run on other processes kept busy over the next
    ``interval`` seconds (this one sleeps meanwhile), and how many there are; None where the
    kernel does not say (not Linux)."""
    cpus = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    before = cpu_times(cpus)
    time.sleep(interval)
    after = cpu_times(cpus)
    spans = [(after[c][0] - before[c][0], after[c][1] - before[c][1]) for c in after if c in before]
    if not spans or not any(total for _, total in spans):
        return None
    return sum(busy / total for busy, total in spans if total), len(spans)


def oversubscription_advice(busy: float, cores: int, threads: int) -> str | None:
    """One line of advice when ``threads`` torch threads would share ``cores`` CPU cores with other
    work keeping ``busy`` of them busy: OpenMP threads that wait for each other on shared cores
    make a step several times slower, not just proportionally (docs/performance.md). None when
    fewer threads would not help."""
    free = max(cores - busy, 0.0)
    advised = max(1, int(free + 0.5))
    if busy < 0.5 or advised >= threads:
        return None
    return (
        f"{busy:.1f} of the {cores} CPU cores this process may use are busy with other work: "
        f"with {threads} torch threads this run can be several times slower than with {advised}; "
        f"set OMP_NUM_THREADS={advised} for it, or run one job at a time"
    )


def warn_if_cores_busy(device: torch.device, log: logging.Logger) -> None:
    """Log :func:`oversubscription_advice` for a CPU run, measured now (0.15 s)."""
    if device.type != "cpu":
        return
    measured = busy_cores()
    advice = measured and oversubscription_advice(*measured, torch.get_num_threads())
    if advice:
        log.warning(advice)


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[None]:
    """``torch.autocast`` when ``dtype`` is set, else a no-op context."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds code that uses the legacy global RNG
    torch.manual_seed(seed)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextlib.contextmanager
def distributed_context(device: torch.device) -> Iterator[Distributed]:
    """Join the process group ``torchrun`` describes in the environment, and leave it afterwards.

    Outside ``torchrun`` (no ``WORLD_SIZE`` > 1) this yields a single-process :class:`Distributed`.
    The backend is NCCL for CUDA devices and gloo otherwise.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or dist.is_initialized():
        yield Distributed(
            dist.get_rank() if dist.is_initialized() else 0,
            dist.get_world_size() if dist.is_initialized() else 1,
        )
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    try:
        yield Distributed(dist.get_rank(), dist.get_world_size())
    finally:
        dist.destroy_process_group()


class _NoCudaRuntimeNotice(logging.Filter):
    """Drops torch's "No CUDA runtime is found" warning: compiling for the CPU with a CUDA build of
    PyTorch is normal and needs no CUDA runtime, but the warning reads like an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "No CUDA runtime is found" not in record.getMessage()


def quiet_compiler_notices() -> None:
    """Silence the CUDA-runtime notice ``torch.compile`` prints on a CPU (once per process)."""
    notices = logging.getLogger("torch.utils.cpp_extension")
    if not any(isinstance(f, _NoCudaRuntimeNotice) for f in notices.filters):
        notices.addFilter(_NoCudaRuntimeNotice())


def is_compiler_error(error: BaseException) -> bool:
    """Whether ``error`` comes from ``torch.compile`` (dynamo or inductor), not from the model."""
    return type(error).__module__.startswith(("torch._dynamo", "torch._inductor"))


def compile_advice(flag: str, error: BaseException, instead: str) -> str:
    """The one-line message for a failed ``torch.compile``: ``flag`` failed; ``instead``, or install
    what it needs."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return (
        f"{flag} failed ({first}); {instead}, or install what "
        "torch.compile needs (a C++ compiler on CPU, Triton on GPU)"
    )
