"""bf16 against fp32 scoring on real data: image AUROC, score correlation and speed, in one run.

Scores the test set of a data set twice with the same model file, once in fp32 and once with the
network under bf16 autocast (``--precision bf16``: the loss terms and maps stay fp32), and prints
the image AUROC of each, its change, the Spearman correlation of the two score lists, the largest
relative score change and the speed ratio (alternating timed blocks of the whole test set). The
criteria for making bf16 the CPU default (issue #15): AUROC change <= 0.005 and Spearman >= 0.999
on every data set.

    python benchmarks/bf16_scores.py RUN --data mvtec --root ../shared/data/mvtec_ad --category bottle
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from piade.cli.args import parse_args, test_set
from piade.inference.detector import Detector, score_dataset
from piade.metrics import image_auroc


def main() -> None:
    argv = sys.argv[1:]
    repeats = 3
    if "--repeats" in argv:
        at = argv.index("--repeats")
        repeats = int(argv[at + 1])
        del argv[at : at + 2]
    args = parse_args(["evaluate", *argv, "--out", "unused", "--device", "cpu"])
    detectors = {p: Detector.load(args.model, precision=p) for p in ("fp32", "bf16")}
    fp32 = detectors["fp32"]  # the images as the model saw them: its size and central crop
    data = test_set(args, image_size=fp32.image_size, center_crop=fp32.config.center_crop)
    labels = np.asarray(data.labels)
    scores, seconds = {}, {p: [] for p in detectors}
    for _ in range(repeats):  # alternate, so both see the same state of the machine
        for precision, detector in detectors.items():
            tic = time.perf_counter()
            scores[precision] = score_dataset(detector, data, batch_size=32)["score"]
            seconds[precision].append(time.perf_counter() - tic)
    fp32, bf16 = scores["fp32"], scores["bf16"]
    record = {
        "images": len(labels),
        "auroc_fp32": image_auroc(labels, fp32),
        "auroc_bf16": image_auroc(labels, bf16),
        "spearman": float(spearmanr(fp32, bf16).statistic),
        "max_relative_change": float(np.max(np.abs(bf16 - fp32) / np.maximum(np.abs(fp32), 1e-12))),
        "speedup": statistics.median(seconds["fp32"]) / statistics.median(seconds["bf16"]),
        "images_per_s_fp32": len(labels) / statistics.median(seconds["fp32"]),
        "images_per_s_bf16": len(labels) / statistics.median(seconds["bf16"]),
        "threads": torch.get_num_threads(),
    }
    record["auroc_change"] = record["auroc_bf16"] - record["auroc_fp32"]
    record["meets_criteria"] = abs(record["auroc_change"]) <= 0.005 and record["spearman"] >= 0.999
    print(json.dumps(record))


if __name__ == "__main__":
    main()
