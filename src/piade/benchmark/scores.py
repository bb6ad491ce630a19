"""Beyond the paper: the image AUROC of every image score, for the same piade models.

The paper ranks test images by their total loss (score ``loss``), and the benchmark's main table
keeps that score so it stays comparable with the paper's. Each piade run also records the AUROC of
every other score of :data:`piade.config.SCORE_KINDS`, computed from the same scoring pass of the
same model (``fitted.image_auroc_by_score`` in its ``result.json``). This table shows them side by
side: one row per class, one column per score, the mean over seeds; runs recorded before the
scores existed are left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from piade.config import SCORE_KINDS

METHOD = "piade"  # the two-vector model; the one-vector ablation keeps the paper's score only
SCORES_TITLE = "Image score (beyond the paper): every score of the same piade models"
SCORES_NOTE = (
    "Image AUROC of piade's two-vector models under each image score, from the same scoring pass."
    " `loss` is the paper's (the table above); `loss-balanced` divides each of its three terms by"
    " its mean on held-out normal images; the `map-*` scores read the smoothed anomaly map and"
    " `perceptual-top1` the ImageNet-feature residual (docs/engine.md). The best score of each row"
    " is in bold."
)


def score_table(results: Sequence[dict[str, Any]], classes: Sequence[str]) -> list[dict[str, Any]]:
    """Rows {class, kind: AUROC…} for every class whose piade runs recorded every score, then a
    "Mean" row; empty when none did."""
    rows: list[dict[str, Any]] = []
    for cls in classes:
        runs = [
            r["fitted"]["image_auroc_by_score"]
            for r in results
            if r["method"] == METHOD
            and r["class"] == cls
            and set(r.get("fitted", {}).get("image_auroc_by_score", {})) >= set(SCORE_KINDS)
        ]
        if runs:
            rows.append(
                {"class": cls} | {k: statistics.fmean(run[k] for run in runs) for k in SCORE_KINDS}
            )
    if rows:
        rows.append(
            {"class": "Mean"} | {k: statistics.fmean(r[k] for r in rows) for k in SCORE_KINDS}
        )
    return rows


def render_scores(rows: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown, each row's best score in bold."""
    lines = [
        "| class | " + " | ".join(f"`{k}`" for k in SCORE_KINDS) + " |",
        "|---|" + "---:|" * len(SCORE_KINDS),
    ]
    for r in rows:
        best = max(r[k] for k in SCORE_KINDS)
        cells = [f"**{r[k]:.3f}**" if r[k] == best else f"{r[k]:.3f}" for k in SCORE_KINDS]
        name = "**Mean**" if r["class"] == "Mean" else r["class"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
