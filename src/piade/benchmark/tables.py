"""Benchmark tables in the paper's shape (one row per class, a mean row, the paper as reference).

:func:`build_tables` turns result records (see :mod:`piade.benchmark.runner`) into plain data;
:func:`write_tables` writes it as ``results.json``, ``results.csv`` (image AUROC, the paper's shape)
and ``results.md`` (every table), plus the ablation of Sec. 6 when piade and piade-1v both ran.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from piade.benchmark.ablation import ablation_table, render_ablation, write_ablation_chart
from piade.benchmark.authors import AUTHORS_NOTE, AUTHORS_TITLE, authors_table, render_authors
from piade.benchmark.methods import METHODS
from piade.benchmark.paper import CITATION, PAPER_TABLES, paper_mean, paper_value
from piade.benchmark.scores import SCORES_NOTE, SCORES_TITLE, render_scores, score_table
from piade.data.cifar10 import CIFAR10_CLASSES
from piade.data.mvtec import MVTEC_CATEGORIES

METRICS = ("image_auroc", "pixel_auroc", "aupro")
COST_KEYS = (
    "epochs",
    "image_size",
    "n_train",
    "train_seconds",
    "train_images_per_s",
    "infer_images_per_s",
    "peak_rss_mb",
    "peak_cuda_mb",
    "device_name",
)


def class_order(suite: str, classes: Iterable[str]) -> list[str]:
    """Classes in the paper's row order (CIFAR-10 index, Table 3 order), else natural order."""
    paper = {"cifar10": CIFAR10_CLASSES, "mvtec": MVTEC_CATEGORIES}.get(suite, ())
    rank = {name: i for i, name in enumerate(paper)}

    def key(name: str) -> tuple[int, list[int | str]]:
        parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
        return rank.get(name, len(rank)), parts

    return sorted(set(classes), key=key)


def summarise(results: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (method, class): each metric's mean and standard deviation over seeds, and the seeds."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for record in results:
        groups.setdefault((record["method"], record["class"]), []).append(record)
    summary = {}
    for key, records in groups.items():
        cell: dict[str, Any] = {"seeds": sorted(r["seed"] for r in records)}
        for metric in METRICS:
            values = [r["metrics"][metric] for r in records if r["metrics"].get(metric) is not None]
            cell[metric] = statistics.fmean(values) if values else None
            cell[f"{metric}_std"] = statistics.pstdev(values) if len(values) > 1 else None
        summary[key] = cell
    return summary


def build_tables(results: Sequence[dict[str, Any]], *, suite: str) -> dict[str, Any]:
    """Every table of a benchmark as JSON-ready data; see the module doc."""
    summary = summarise(results)
    classes = class_order(suite, (r["class"] for r in results))
    methods = [m for m in METHODS if any(r["method"] == m for r in results)]
    paper = PAPER_TABLES.get(suite)
    references = [m for m in methods if paper_mean(suite, m) is not None]
    rows = []
    for cls in classes:
        row: dict[str, Any] = {"class": cls}
        for m in methods:
            cell = summary.get((m, cls), {})
            row[m] = cell.get("image_auroc")
            row[f"{m} std"] = cell.get("image_auroc_std")
            row[f"{m} seeds"] = cell.get("seeds", [])
        for m in references:
            row[f"paper {m}"] = paper_value(suite, m, cls)
        rows.append(row)
    mean: dict[str, Any] = {"class": "Mean"}
    for m in methods:
        values = [row[m] for row in rows if row[m] is not None]
        mean[m] = statistics.fmean(values) if values else None
        mean[f"{m} classes"] = len(values)
    for m in references:
        values = [row[f"paper {m}"] for row in rows if row[f"paper {m}"] is not None]
        mean[f"paper {m}"] = statistics.fmean(values) if values else None
        mean[f"paper {m} classes"] = len(values)
    return {
        "suite": suite,
        "paper": {
            "table": paper.name if paper else None,
            "caption": paper.caption if paper else None,
            "citation": CITATION,
            "columns": {m: paper.methods[m] for m in references} if paper else {},
            "means_all_classes": {m: paper_mean(suite, m) for m in references},
        },
        "classes": classes,
        "methods": methods,
        "image_auroc": {"rows": rows, "mean": mean},
        "pixel": _pixel_rows(summary, classes, methods),
        "cost": _cost_rows(results, classes, methods),
        "ablation": ablation_table(summary, classes, suite=suite),
        "scores": score_table(results, classes),
        "authors": authors_table(results, classes, methods, suite),
        "warnings": [
            f"{r['method']} {r['class']} seed {r['seed']}: {w}"
            for r in results
            for w in r.get("warnings", [])
        ],
    }


def _pixel_rows(
    summary: dict[tuple[str, str], dict[str, Any]], classes: list[str], methods: list[str]
) -> list[dict[str, Any]]:
    with_maps = [
        m for m in methods if any(summary.get((m, c), {}).get("pixel_auroc") for c in classes)
    ]
    rows = []
    for cls in classes:
        row: dict[str, Any] = {"class": cls}
        for m in with_maps:
            cell = summary.get((m, cls), {})
            row |= {f"{m} pixel_auroc": cell.get("pixel_auroc"), f"{m} aupro": cell.get("aupro")}
        rows.append(row)
    return rows if with_maps else []


def _cost_rows(
    results: Sequence[dict[str, Any]], classes: list[str], methods: list[str]
) -> list[dict[str, Any]]:
    order = {(c, m): (i, j) for i, c in enumerate(classes) for j, m in enumerate(methods)}
    ordered = sorted(results, key=lambda r: (*order[(r["class"], r["method"])], r["seed"]))
    return [
        {"class": r["class"], "method": r["method"], "seed": r["seed"]}
        | {k: r["cost"].get(k) for k in COST_KEYS}
        | {
            "encoder_weights": r["settings"].get("encoder_weights")
            if "piade" in r["method"]
            else None
        }
        for r in ordered
    ]


def write_tables(out_dir: str | Path, results: Sequence[dict[str, Any]], *, suite: str) -> None:
    """Write ``results.json``, ``results.csv``, ``results.md`` (and the ablation) into ``out_dir``."""
    out = Path(out_dir)
    if not results:
        return
    tables = build_tables(results, suite=suite)
    (out / "results.json").write_text(json.dumps(tables | {"runs": list(results)}, indent=2) + "\n")
    _write_csv(out / "results.csv", tables)
    (out / "results.md").write_text(render_markdown(tables))
    if tables["ablation"]:
        (out / "ablation.md").write_text(render_ablation(tables["ablation"], suite=suite))
        write_ablation_chart(tables["ablation"], out / "ablation.png", suite=suite)


def _write_csv(path: Path, tables: dict[str, Any]) -> None:
    rows = [*tables["image_auroc"]["rows"], tables["image_auroc"]["mean"]]
    columns = ["class", *tables["methods"], *[f"paper {m}" for m in tables["paper"]["columns"]]]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in columns])


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def fmt(value: float | None, std: float | None = None) -> str:
    """A metric as the tables print it: 3 decimals, ± the seed deviation, "–" when missing."""
    if value is None:
        return "–"
    return f"{value:.3f}" if std is None else f"{value:.3f} ± {std:.3f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_image_table(tables: dict[str, Any]) -> str:
    """The image-AUROC table, in the shape of the paper's Tables 2–4, as Markdown."""
    methods, paper = tables["methods"], tables["paper"]
    refs = list(paper["columns"])
    header = ["class", *methods, *[f"paper: {paper['columns'][m]}" for m in refs]]
    body = [
        [row["class"], *[fmt(row[m], row[f"{m} std"]) for m in methods]]
        + [fmt(row[f"paper {m}"]) for m in refs]
        for row in tables["image_auroc"]["rows"]
    ]
    mean = tables["image_auroc"]["mean"]
    n = len(tables["classes"])
    cells = [_mean_cell(mean[m], mean[f"{m} classes"], n) for m in methods]
    cells += [_mean_cell(mean[f"paper {m}"], mean[f"paper {m} classes"], n) for m in refs]
    body.append(["**Mean**", *cells])
    own = paper["means_all_classes"]
    if refs and any(own[m] != mean[f"paper {m}"] for m in refs):
        body.append(
            ["paper's mean, all its classes", *["" for _ in methods], *[fmt(own[m]) for m in refs]]
        )
    return markdown_table(header, body)


def render_warnings(tables: dict[str, Any]) -> str:
    """The runs whose figures cannot be trusted, and why, as a Markdown list ("" when none)."""
    warnings = tables.get("warnings", [])  # absent in tables written before warnings existed
    return "".join(["\n**Warnings:**\n\n", *[f"- {w}\n" for w in warnings]]) if warnings else ""


def _mean_cell(value: float | None, count: int, total: int) -> str:
    if value is None:
        return "–"
    return fmt(value) if count == total else f"{fmt(value)} ({count}/{total} classes)"


def render_markdown(tables: dict[str, Any]) -> str:
    """Every table of a benchmark as one Markdown page."""
    paper = tables["paper"]
    parts = [f"# piade benchmark: {tables['suite']}\n"]
    caption = f"{paper['table']} of the paper: {paper['caption']}. " if paper["table"] else ""
    parts.append(
        f"Image AUROC. {caption}Paper columns: the values the paper reports ({paper['citation']}).\n"
    )
    parts.append(render_image_table(tables))
    if tables.get("warnings"):
        parts.append(render_warnings(tables))
    if tables["pixel"]:
        parts.append("\n## Pixel-level (ground-truth masks)\n")
        parts.append(render_pixel_table(tables["pixel"]))
    if tables["ablation"]:
        parts.append("\n## Ablation (Sec. 6): one instantiation vector vs two\n")
        parts.append(render_ablation(tables["ablation"], suite=tables["suite"]))
    if tables["scores"]:
        parts.append(f"\n## {SCORES_TITLE}\n\n{SCORES_NOTE}\n")
        parts.append(render_scores(tables["scores"]))
    if tables["authors"]:
        parts.append(f"\n## {AUTHORS_TITLE}\n\n{AUTHORS_NOTE}\n")
        parts.append(render_authors(tables["authors"]))
    parts.append("\n## Cost\n")
    parts.append(render_cost(tables["cost"]))
    return "\n".join(parts)


def render_pixel_table(rows: Sequence[dict[str, Any]]) -> str:
    """The pixel-level table: a row per class, a column per method and metric."""
    keys = [k for k in rows[0] if k != "class"]
    header = [k.replace("pixel_auroc", "pixel AUROC").replace("aupro", "AUPRO") for k in keys]
    return markdown_table(
        ["class", *header], [[row["class"], *[fmt(row[k]) for k in keys]] for row in rows]
    )


def render_cost(rows: Sequence[dict[str, Any]]) -> str:
    """The cost of every run: epochs, time, throughput, peak memory, device, weights."""
    header = ["class", "method", "seed", "epochs", "px", "train s", "train img/s", "infer img/s",
              "peak RSS MB", "device", "encoder weights"]  # fmt: skip
    body = [
        [
            r["class"],
            r["method"],
            str(r["seed"]),
            "–" if r["epochs"] is None else str(r["epochs"]),
            str(r["image_size"]),
            f"{r['train_seconds']:.0f}",
            "–" if r["train_images_per_s"] is None else f"{r['train_images_per_s']:.1f}",
            f"{r['infer_images_per_s']:.1f}",
            f"{r['peak_rss_mb']:.0f}",
            str(r["device_name"]),
            "" if "piade" not in r["method"] else (r["encoder_weights"] or "none (random)"),
        ]
        for r in rows
    ]
    return markdown_table(header, body)
