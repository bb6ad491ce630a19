"""Beyond the paper: the image AUROC of every image score, for the same piade models.

The paper ranks test images by their total loss (score ``loss``), and the benchmark's main table
keeps that score so it stays comparable with the paper's. Each piade run also records the AUROC of
every other score of :data:`piade.config.SCORE_KINDS`, computed from the same scoring pass of the
same model (``fitted.image_auroc_by_score`` in its ``result.json``). This table shows them side by
side: one row per class, one column per score, the mean over seeds; runs recorded before the
scores existed are left out, and a kind is shown only where every run in the table recorded it.
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
    " `perceptual-top1` the ImageNet-feature residual; `loss-x-map` is `loss-balanced` times"
    " `map-max` (docs/engine.md; a table has no column for a kind its runs predate). The best"
    " score of each row"
    " is in bold."
)


def score_table(results: Sequence[dict[str, Any]], classes: Sequence[str]) -> list[dict[str, Any]]:
    """Rows {class, kind: AUROC…} for every class whose piade runs recorded image scores, then a
    "Mean" row; empty when none did. The columns are the kinds every one of those runs recorded
    (runs made before a kind existed lack it), in the order of :data:`SCORE_KINDS`."""
    recorded = [
        r["fitted"]["image_auroc_by_score"]
        for r in results
        if r["method"] == METHOD and r["class"] in classes and _by_score(r)
    ]
    kinds = [k for k in SCORE_KINDS if recorded and all(k in run for run in recorded)]
    rows: list[dict[str, Any]] = []
    for cls in classes:
        runs = [_by_score(r) for r in results if r["method"] == METHOD and r["class"] == cls]
        runs = [run for run in runs if run]
        if runs and kinds:
            rows.append(
                {"class": cls} | {k: statistics.fmean(run[k] for run in runs) for k in kinds}
            )
    if rows:
        rows.append({"class": "Mean"} | {k: statistics.fmean(r[k] for r in rows) for k in kinds})
    return rows


def _by_score(result: dict[str, Any]) -> dict[str, float]:
    return dict(result.get("fitted", {}).get("image_auroc_by_score", {}))


def render_scores(rows: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown, each row's best score in bold."""
    kinds = [k for k in rows[0] if k != "class"]
    lines = [
        "| class | " + " | ".join(f"`{k}`" for k in kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]
    for r in rows:
        shown = {k: f"{r[k]:.3f}" for k in kinds}  # ties as printed, not to the last float bit
        best = max(shown.values(), key=float)
        cells = [f"**{shown[k]}**" if shown[k] == best else shown[k] for k in kinds]
        name = "**Mean**" if r["class"] == "Mean" else r["class"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
