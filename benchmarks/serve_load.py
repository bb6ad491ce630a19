"""Throughput of ``piade serve`` under load, against ``piade predict`` on the same images.

Starts ``piade serve MODEL`` on 127.0.0.1 and a free port, sends every image of the folder (each
``--rounds`` times) as ``POST /v1/predict`` (multipart, no map) from ``C`` client threads at once
for each ``--concurrency`` C (1, 4 and 16 by default), and prints requests/s and the 50th, 95th
and 99th percentile latency; then
runs ``piade predict MODEL FOLDER --maps none`` and takes the images/s it prints. Each client
thread keeps one HTTP connection. Prints one JSON line per measurement, then a table::

    python benchmarks/serve_load.py runs/bottle ../shared/data/mvtec_ad/bottle/test
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from piade.inference.predict import find_images


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(model: str, flags: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "piade", "serve", model, "--port", str(port), *flags]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.25)
    process.kill()
    raise SystemExit("piade serve did not answer within 120 s")


def load(url: str, files: list[tuple[str, bytes]], concurrency: int) -> dict[str, float]:
    """Send every file once from ``concurrency`` threads; images/s and latencies."""
    chunks = [files[k::concurrency] for k in range(concurrency)]
    latencies: list[float] = []
    batched: list[int] = []

    def client(mine: list[tuple[str, bytes]]) -> None:
        with httpx.Client(timeout=120) as http:
            for name, data in mine:
                tic = time.perf_counter()
                answer = http.post(f"{url}/v1/predict", files={"file": (name, data)})
                answer.raise_for_status()
                latencies.append(time.perf_counter() - tic)
                batched.append(int(answer.json()["batched_with"]))

    tic = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, chunks))
    seconds = time.perf_counter() - tic
    latencies.sort()
    return {
        "images_per_s": len(files) / seconds,
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p95_ms": 1000 * latencies[round(0.95 * (len(latencies) - 1))],
        "latency_p99_ms": 1000 * latencies[round(0.99 * (len(latencies) - 1))],
        "mean_batch": statistics.fmean(batched),
    }


def predict_rate(model: str, folder: str, flags: list[str]) -> float:
    """The images/s that ``piade predict --maps none`` prints for the folder."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "piade", "predict", model, folder, "--out", out,
                   "--maps", "none", *flags]  # fmt: skip
        text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"([0-9.]+) images/s", text)
    if found is None:
        raise SystemExit(f"piade predict printed no images/s:\n{text}")
    return float(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model")
    parser.add_argument("folder")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=2, help="times each image is sent")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-window-ms", default="5")
    args = parser.parse_args()
    paths = list(find_images([args.folder]))
    files = [(p.name, p.read_bytes()) for p in paths] * args.rounds
    device = ["--device", args.device]
    process, url = start(args.model, [*device, "--batch-window-ms", args.batch_window_ms])
    rows = []
    try:
        load(url, files[: min(16, len(files))], 4)  # warm-up
        for c in args.concurrency:
            row = {"what": f"serve, {c} client(s)", "images": len(files)} | load(url, files, c)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    rate = predict_rate(args.model, args.folder, device)
    print(
        json.dumps(
            {"what": "piade predict --maps none", "images": len(paths), "images_per_s": rate}
        )
    )
    print(f"\n{len(paths)} images x {args.rounds}; piade predict --maps none: {rate:.1f} images/s")
    for row in rows:
        print(f"{row['what']:<20} {row['images_per_s']:6.1f} requests/s ({row['images_per_s'] / rate:.0%}"
              f" of predict), latency p50 {row['latency_p50_ms']:.0f} ms, p95"
              f" {row['latency_p95_ms']:.0f} ms, p99 {row['latency_p99_ms']:.0f} ms,"
              f" mean batch {row['mean_batch']:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
