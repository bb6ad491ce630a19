"""The ablation of the paper's Sec. 6: one instantiation vector (no routing) against two.

Reported like the paper's Fig. 4: image AUROC per class for both variants, as a table and a grouped
bar chart. The paper's figure gives no numbers in its text, so there is no reference column.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ONE, TWO = "piade-1v", "piade"


def ablation_table(
    summary: dict[tuple[str, str], dict[str, Any]], classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows (class, one vector, two vectors, difference) for every class both variants ran on,
    followed by a "Mean" row; empty when no class has both."""
    rows = []
    for cls in classes:
        one, two = summary.get((ONE, cls)), summary.get((TWO, cls))
        if not one or not two or one["image_auroc"] is None or two["image_auroc"] is None:
            continue
        seeds = sorted(set(one["seeds"]) & set(two["seeds"]))
        rows.append(
            {
                "class": cls,
                "one_vector": one["image_auroc"],
                "two_vectors": two["image_auroc"],
                "difference": two["image_auroc"] - one["image_auroc"],
                "seeds": seeds,
            }
        )
    if rows:
        rows.append(
            {
                "class": "Mean",
                **{
                    key: statistics.fmean(r[key] for r in rows)
                    for key in ("one_vector", "two_vectors", "difference")
                },
                "seeds": [],
            }
        )
    return rows


def render_ablation(rows: Sequence[dict[str, Any]]) -> str:
    """The ablation table as Markdown."""
    lines = [
        "| class | 1 vector (no routing) | 2 vectors (routing) | 2 − 1 |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['class']} | {r['one_vector']:.3f} | {r['two_vectors']:.3f} | "
            f"{r['difference']:+.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_ablation_chart(rows: Sequence[dict[str, Any]], path: Path, *, suite: str) -> Path:
    """A grouped bar chart of the ablation (the shape of the paper's Fig. 4), written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["class"] for r in rows]
    x = np.arange(len(rows), dtype=np.float64)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows) + 1.5), 3.2), dpi=120)
    width = 0.38
    ax.bar(x - width / 2, [r["one_vector"] for r in rows], width, label="1 vector", color="#9aa5b1")
    ax.bar(
        x + width / 2, [r["two_vectors"] for r in rows], width, label="2 vectors", color="#2b6cb0"
    )
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1)
    ax.set_ylabel("image AUROC")
    ax.set_title(f"Ablation, {suite}: one vs two instantiation vectors")
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
