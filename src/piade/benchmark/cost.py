"""What a benchmark run cost: wall time, throughput, peak memory, device — measured, never assumed."""

from __future__ import annotations

import os
import platform
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

_STATM = "/proc/self/statm"
_POLL_SECONDS = 0.05


@dataclass
class PeakMemory:
    """Peak memory of a block: resident set size sampled by a thread (CPU), allocator peak (CUDA).

    ``rss_mb`` falls back to the process's lifetime maximum RSS where ``/proc`` is missing.
    """

    device: torch.device
    rss_mb: float = 0.0
    cuda_mb: float | None = None
    method: str = "sampled /proc/self/statm every 50 ms"
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_dict(self) -> dict[str, float | str | None]:
        return {
            "peak_rss_mb": round(self.rss_mb, 1),
            "peak_cuda_mb": self.cuda_mb,
            "rss_method": self.method,
        }


def _rss_bytes() -> int | None:
    try:
        with open(_STATM) as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def peak_memory(device: torch.device) -> Iterator[PeakMemory]:
    """Measure the peak memory of the ``with`` block on ``device``."""
    peak = PeakMemory(device)
    if _rss_bytes() is None:
        peak.method = "process lifetime maximum (getrusage)"
        yield peak
        peak.rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    highest = [0]

    def sample() -> None:
        while not peak._stop.wait(_POLL_SECONDS):
            highest[0] = max(highest[0], _rss_bytes() or 0)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        peak._stop.set()
        thread.join()
        highest[0] = max(highest[0], _rss_bytes() or 0)
        peak.rss_mb = highest[0] / 2**20
        if device.type == "cuda":
            peak.cuda_mb = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


class Stopwatch:
    """Wall-clock seconds of named phases (``with watch("train"): ...``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        tic = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - tic


def device_description(device: torch.device) -> dict[str, str | int]:
    """The hardware a run used: device, its name, CPU threads, platform."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_name()
    return {
        "device": str(device),
        "device_name": name,
        "cpu_count": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
