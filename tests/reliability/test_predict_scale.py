"""``piade predict`` on 10 000 small images: streamed in bounded memory, with progress, and one
corrupt file costs only its own row. See docs/reliability.md for the figures measured."""

from __future__ import annotations

import csv
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.reliability.badfiles import png
from tests.reliability.conftest import Cli

N_IMAGES = 10_000
MiB = 2**20
# Holding the batch tensors of every image at once would take 10 000 x 3 x 32 x 32 float32 bytes:
ALL_IMAGES_AT_MODEL_SIZE = N_IMAGES * 3 * 32 * 32 * 4  # 117 MiB, before any activation
STATM = Path("/proc/self/statm")


@contextmanager
def peak_rss_growth() -> Iterator[dict[str, float]]:
    """Sample the resident set size every 5 ms; yields a dict that gets ``peak`` (bytes above the
    value at the start) and ``seconds``."""
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        return int(STATM.read_text().split()[1]) * page

    result: dict[str, float] = {}
    start, peak, done = rss(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    tic = time.perf_counter()
    thread.start()
    try:
        yield result
    finally:
        done.set()
        thread.join()
        result["seconds"] = time.perf_counter() - tic
        result["peak"] = max(peak[0], rss()) - start


def write_images(folder: Path, n: int, *, corrupt: int | None = None) -> Path:
    """``n`` 8x8 PNGs (16 different ones, repeated); file ``corrupt`` is cut in half."""
    folder.mkdir(parents=True)
    variants = [png(8, seed=s) for s in range(16)]
    for i in range(n):
        data = variants[i % 16]
        (folder / f"{i:05d}.png").write_bytes(data[: len(data) // 2] if i == corrupt else data)
    return folder


@pytest.mark.skipif(not STATM.exists(), reason="reads the resident set size from /proc")
def test_predict_streams_ten_thousand_images_in_bounded_memory(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    corrupt = 4321
    args = ["--no-maps", "--device", "cpu"]  # the default batch size (16)
    warm = write_images(tmp_path / "warm", 200)
    assert cli(["predict", model_file, warm, *args, "--out", tmp_path / "warm_out"]).code == 0
    small = write_images(tmp_path / "small", N_IMAGES // 10)
    with peak_rss_growth() as reference:  # the same run on a tenth of the images
        assert cli(["predict", model_file, small, *args, "--out", tmp_path / "small_out"]).code == 0
    folder = write_images(tmp_path / "images", N_IMAGES, corrupt=corrupt)

    with peak_rss_growth() as memory:
        run = cli(["predict", model_file, folder, *args, "--out", tmp_path / "out"])
    print(
        f"predict {N_IMAGES} images: {memory['seconds']:.1f} s, peak RSS growth "
        f"{memory['peak'] / MiB:.1f} MiB ({N_IMAGES // 10} images: {reference['peak'] / MiB:.1f} MiB)"
    )

    assert run.code == 0, run.err[-2000:]
    assert f"scored {N_IMAGES - 1} image(s)" in run.out and "1 unreadable" in run.out
    with (tmp_path / "out" / "scores.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_IMAGES
    bad = [r for r in rows if r["error"]]
    assert [Path(r["path"]).name for r in bad] == [f"{corrupt:05d}.png"]
    assert "truncated" in bad[0]["error"]
    assert all(r["score"] for r in rows if not r["error"])

    progress = [line for line in run.err.splitlines() if "images done" in line]
    done = [int(line.split(": ")[1].split("/")[0]) for line in progress]  # "INFO ...: 1008/10000"
    assert len(done) == 10 and done == sorted(done) and done[0] < N_IMAGES // 10 + 16
    assert (
        progress[-1]
        == f"INFO piade.inference.predict: {N_IMAGES}/{N_IMAGES} images done, 1 unreadable"
    )

    # Bounded: ten times the images cost no more memory (a batch at a time), and far less than
    # holding every image at the model's input size would.
    assert memory["peak"] < reference["peak"] + 24 * MiB, (memory, reference)
    assert memory["peak"] < ALL_IMAGES_AT_MODEL_SIZE / 2, memory
