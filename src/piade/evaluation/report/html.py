"""The report's self-contained HTML page: metrics, embedded figures, vector statistics, top scores
(inline CSS, no scripts, no external resources)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping

import numpy as np

from piade.evaluation.report.data import ReportData
from piade.evaluation.report.figures import CLASSES
from piade.metrics import group_statistics, vector_statistics

TOP_ROWS = 20  # images listed in the HTML table


def page(
    data: ReportData,
    title: str,
    metrics: Mapping[str, object],
    figures: list[tuple[str, bytes, str]],
) -> str:
    """The self-contained report page."""
    metric_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v)}</td></tr>" for k, v in metrics.items()
    )
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(c)}</figcaption></figure>"
        for name, png, c in figures
    )
    vectors = _vector_table(data) + _group_table(data)
    top = np.argsort(-data.scores, kind="stable")[:TOP_ROWS]
    top_rows = "".join(
        f"<tr><td>{r + 1}</td><td>{html.escape(str(data.paths[i]))}</td>"
        f"<td>{html.escape(str(data.groups[i])) if data.groups is not None else ''}</td>"
        f"<td>{CLASSES[int(data.labels[i])][1]}</td><td>{data.scores[i]:.5g}</td>"
        f"<td>{'above' if data.scores[i] > data.threshold else 'at or below'}</td></tr>"
        for r, i in enumerate(top)
    )
    n_anom = int(data.labels.sum())
    summary = (
        f"{data.labels.size} images ({data.labels.size - n_anom} normal, {n_anom} "
        f"anomalous); threshold {data.threshold:.5g} (scores above it are flagged)."
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{summary}</p>"
        f"<h2>Metrics</h2><table>{metric_rows}</table>{vectors}<h2>Figures</h2>{images}"
        f"<h2>Top {len(top)} scores</h2><table><tr><th>#</th><th>path</th><th>group</th>"
        f"<th>label</th><th>score</th><th>vs threshold</th></tr>{top_rows}</table></body></html>\n"
    )


def _vector_table(data: ReportData) -> str:
    """The instantiation vectors per true class: decoded counts and lengths (median, range)."""
    if data.decoded is None:
        return ""
    stats = vector_statistics(data.lengths, data.decoded, data.labels)
    j = data.lengths.shape[1]
    head = "".join(
        f"<th>decoded vector {v}</th><th>length of vector {v}: median [min, max]</th>"
        for v in range(1, j + 1)
    )
    rows = ""
    for name, s in stats.items():
        cells = ""
        for v in range(1, j + 1):
            spread = s["lengths"][f"vector_{v}"]
            cells += (
                f"<td>{s['decoded'][f'vector_{v}']} of {s['n']}</td><td>{spread['median']:.4f} "
                f"[{spread['min']:.4f}, {spread['max']:.4f}]</td>"
            )
        rows += f"<tr><th>{name}</th>{cells}</tr>"
    return (
        "<h2>Instantiation vectors</h2><p>The longest vector is decoded (Sec. 3.1); vector 1 is "
        f"the one trained to reconstruct.</p><table><tr><th>class</th>{head}</tr>{rows}</table>"
    )


def _group_table(data: ReportData) -> str:
    """Each group of images (defect type, class): how many, how many flagged, its AUROC."""
    if data.groups is None or not any(data.groups) or len(set(data.groups)) < 2:
        return ""
    if not np.isfinite(data.scores).all():  # no ranking to speak of; the figures say so
        return "<h2>By group</h2><p>Not available: some scores are not finite.</p>"
    stats = group_statistics(data.labels, data.scores, list(data.groups), data.threshold)
    rows = "".join(
        f"<tr><th>{html.escape(r['group'])}</th><td>{r['label']}</td><td>{r['n']}</td>"
        f"<td>{r['flagged']} ({r['flagged'] / r['n']:.0%})</td><td>{_cell(r['image_auroc'])}</td></tr>"
        for r in stats
    )
    return (
        "<h2>By group</h2><p>Each group of test images (a defect type, a class) on its own: how "
        "many scored above the threshold, and the image AUROC of that group against all the normal"
        " images.</p><table><tr><th>group</th><th>class</th><th>images</th><th>flagged</th>"
        f"<th>image AUROC</th></tr>{rows}</table>"
    )


_CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;font-size:.9em}td{word-break:break-all}figure{margin:1.5em 0}"
    "img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.9em}"
)


def _cell(value: object) -> str:
    """A metric value for the table: None as n/a, floats with 4 decimals, all escaped."""
    if value is None:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return html.escape(str(value))
