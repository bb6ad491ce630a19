"""A results page (Markdown) generated from the ``results.json`` files that benchmarks wrote.

Every number on the page comes from those files: the tables, the settings, the commands, the
hardware and the comparison with the paper. Only the prose around them is written here.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from piade.benchmark.ablation import render_ablation
from piade.benchmark.authors import AUTHORS_NOTE, AUTHORS_TITLE, render_authors
from piade.benchmark.methods import METHODS
from piade.benchmark.scores import SCORES_NOTE, SCORES_TITLE, render_scores
from piade.benchmark.tables import (
    markdown_table,
    render_image_table,
    render_pixel_table,
    render_warnings,
)
from piade.metrics import mean_auroc_interval
from piade.train.config import TRAIN_LEGACY_VALUES, TrainConfig

SUITE_TITLES = {
    "mvtec": "MVTec AD (paper Table 3)",
    "cifar10": "CIFAR-10 (paper Table 2)",
    "coil100": "COIL (paper Table 4)",
    "folder": "Folder data",
}


def render_page(
    files: Sequence[Path], *, base: Path, title: str = "Results", intro: str = ""
) -> str:
    """The page for the ``results.json`` files in ``files`` (one per benchmark directory), to be
    saved in folder ``base`` (links are relative to it)."""
    suites = [json.loads(Path(f).read_text()) for f in files]
    parts = [f"# {title}\n", intro]
    parts.append(_setup(suites))
    for tables, file in zip(suites, files, strict=True):
        parts.append(_suite_section(tables, Path(file), base))
    return "\n".join(p for p in parts if p)


def _setup(suites: Sequence[dict[str, Any]]) -> str:
    runs = [r for t in suites for r in t["runs"]]
    hosts = sorted(
        {
            f"{r['cost']['device_name']} ({r['cost']['device']}, {r['cost']['cpu_count']} "
            f"CPU cores, {r['cost']['torch_threads']} torch threads), torch {r['cost']['torch']}, "
            f"Python {r['cost']['python']}"
            for r in runs
        }
    )
    piade_runs = [r for r in runs if r["method"].startswith("piade")]
    encoders = sorted({_weights(r["settings"]["encoder_weights"]) for r in piade_runs})
    perceptual = sorted(
        {
            f"{r['settings']['perceptual_net']}().features[:{r['settings'].get('perceptual_depth', 4)}]"
            f" with {_weights(r['settings']['perceptual_weights'])}"
            for r in piade_runs
        }
    )
    versions = sorted({r["piade_version"] for r in runs})
    lines = [
        "## Setup\n",
        f"- Hardware: {'; '.join(hosts)}.",
        f"- piade version: {', '.join(versions)}.",
        f"- piade encoder weights: {', '.join(encoders)}; backbone "
        f"{', '.join(sorted({r['settings']['backbone'] for r in piade_runs}))}.",
        f"- Perceptual network (loss term F of Sec. 3.2): {', '.join(perceptual)}.",
        f"- Seeds: {', '.join(str(s) for s in sorted({r['seed'] for r in runs}))}.",
        "",
    ]
    return "\n".join(lines)


def _weights(value: str | None) -> str:
    if value is None:
        return "random initialisation (no pretrained weights)"
    if value == "imagenet":
        return "ImageNet weights (torchvision)"
    return f"the file `{Path(value).name}`"


def _suite_section(tables: dict[str, Any], file: Path, base: Path) -> str:
    runs = tables["runs"]
    suite = tables["suite"]
    roots = sorted({r["root"] for r in runs})
    commands = sorted({r["command"] for r in runs if r.get("command")})
    parts = [
        f"## {SUITE_TITLES.get(suite, suite)}: {', '.join(f'`{r}`' for r in roots)}\n",
        f"{len(tables['classes'])} class{'es' if len(tables['classes']) > 1 else ''} "
        f"({', '.join(tables['classes'])}); "
        f"source: [`{_link(file, base)}`]({_link(file, base)}).\n",
        "Commands:\n",
        "```",
        *commands,
        "```\n",
        _settings_line(runs),
        "\n### Image AUROC\n",
        render_image_table(tables),
        *([render_warnings(tables)] if tables.get("warnings") else []),
        _comparison(tables),
    ]
    if tables["pixel"]:
        parts += ["\n### Pixel-level (ground-truth masks)\n", render_pixel_table(tables["pixel"])]
    if tables["ablation"]:
        chart = file.with_name(f"{file.stem}-ablation.png")
        parts += [
            "\n### Ablation (Sec. 6, Fig. 4): one instantiation vector vs two\n",
            render_ablation(tables["ablation"], suite=suite),
        ]
        if chart.is_file():
            parts.append(f"\n![ablation]({_link(chart, base)})\n")
    if tables.get("scores"):  # absent in tables written before the scores existed
        parts += [f"\n### {SCORES_TITLE}\n", SCORES_NOTE + "\n", render_scores(tables["scores"])]
    if tables.get("authors"):  # absent in tables written before the subset was recorded
        parts += [
            f"\n### {AUTHORS_TITLE}\n",
            AUTHORS_NOTE + "\n",
            render_authors(tables["authors"]),
        ]
    parts += ["\n### Cost\n", _cost_summary(runs)]
    return "\n".join(parts)


def _methods(runs: Sequence[dict[str, Any]]) -> list[str]:
    return [m for m in METHODS if any(r["method"] == m for r in runs)]


def _link(path: Path, base: Path) -> str:
    return path.resolve().relative_to(base.resolve()).as_posix()


def _settings_line(runs: Sequence[dict[str, Any]]) -> str:
    lines = []
    for method in _methods(runs):
        mine = [r for r in runs if r["method"] == method]
        sizes = sorted({r["cost"]["image_size"] for r in mine})
        epochs = sorted({r["cost"]["epochs"] for r in mine if r["cost"]["epochs"] is not None})
        batch = sorted({r["fitted"]["batch_size"] for r in mine if "batch_size" in r["fitted"]})
        text = f"- `{method}`: {'/'.join(map(str, sizes))} px"
        if epochs:
            text += f", {'/'.join(map(str, epochs))} epochs"
        if batch:
            text += f", batch {'/'.join(map(str, batch))}"
        legacy = TRAIN_LEGACY_VALUES["lr_schedule"]  # result files from before the setting
        schedules = sorted({r["settings"].get("lr_schedule", legacy) for r in mine})
        if method.startswith("piade") and schedules != [TrainConfig.lr_schedule]:
            text += f", learning rate {'/'.join(schedules)}"
        lines.append(text + ".")
    return "Settings as run:\n\n" + "\n".join(lines) + "\n"


def _comparison(tables: dict[str, Any]) -> str:
    """One generated sentence per method the paper reports, comparing the means."""
    mean = tables["image_auroc"]["mean"]
    sentences = []
    for method, column in tables["paper"]["columns"].items():
        ours, theirs = mean.get(method), mean.get(f"paper {method}")
        own = tables["paper"]["means_all_classes"].get(method)
        if ours is not None and theirs is None and own is not None:
            sentences.append(
                f"- `{method}`: mean image AUROC {ours:.3f} here; the paper reports only its mean "
                f'over all its classes, {own:.3f} (column "{column}").'
            )
        if ours is None or theirs is None:
            continue
        gap = ours - theirs
        word = "below" if gap < 0 else "above"
        interval = mean_interval(tables, method)
        spread = ""
        if interval is not None:
            low, high = interval
            where = "inside" if low <= theirs <= high else "outside"
            spread = (
                f" (95 % interval from the test set's size, {low:.3f}–{high:.3f}: the paper's "
                f"figure lies {where} it)"
            )
        sentences.append(
            f"- `{method}`: mean image AUROC {ours:.3f} here against {theirs:.3f} in the paper's "
            f'column "{column}" on the same classes: {abs(gap):.3f} {word} it{spread}.'
        )
    return "\n" + "\n".join(sentences) + "\n" if sentences else ""


def mean_interval(
    tables: dict[str, Any], method: str, level: float = 0.95
) -> tuple[float, float] | None:
    """A ``level`` interval for ``method``'s mean image AUROC over the classes of ``tables`` (as a
    ``results.json`` holds them, with its ``runs``), from each class's test-set counts alone: the
    files keep no scores (:func:`piade.metrics.mean_auroc_interval`). It measures how much the
    test images' sampling moves the figure, not how much a training seed does. None when a class's
    counts are missing (files written before they were recorded).
    """
    results = []
    for row in tables["image_auroc"]["rows"]:
        if row.get(method) is None:
            continue
        runs = [r for r in tables["runs"] if r["method"] == method and r["class"] == row["class"]]
        metrics = runs[0]["metrics"] if runs else {}
        if not metrics.get("n_normal") or not metrics.get("n_anomalous"):
            return None
        results.append((row[method], metrics["n_normal"], metrics["n_anomalous"]))
    return mean_auroc_interval(results, level=level) if results else None


def _cost_summary(runs: Sequence[dict[str, Any]]) -> str:
    rows = []
    for method in _methods(runs):
        mine = [r["cost"] for r in runs if r["method"] == method]
        train = [c["train_images_per_s"] for c in mine if c["train_images_per_s"]]
        rows.append(
            [
                method,
                str(len(mine)),
                f"{sum(c['train_seconds'] + c['infer_seconds'] for c in mine) / 60:.1f}",
                f"{statistics.median(train):.1f}" if train else "–",
                f"{statistics.median(c['infer_images_per_s'] for c in mine):.1f}",
                f"{max(c['peak_rss_mb'] for c in mine):.0f}",
            ]
        )
    header = ["method", "runs", "train + test min (all runs)", "median train img/s", "median test img/s",
              "max peak RSS MB"]  # fmt: skip
    note = (
        "\nTimes are the sum over runs of training epochs and test scoring. Peak RSS is the whole "
        "process's resident memory during a run, so it includes what earlier runs of the same "
        "command left allocated.\n"
    )
    return markdown_table(header, rows) + note
