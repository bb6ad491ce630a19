"""The paper's MVTec AD figures as the authors' released script measured them.

The authors published their evaluation script with the paper's code (github.com/pankajmishra000/
PIADE: ``Testing_mvtech.py`` and its data module ``mvtech.py``, January 2020). It does not score
the whole test split. It reads a category's ``test/good`` folder into one loader and every defect
folder, one after the other, into another, in the order the file system lists them and without
shuffling, in batches of 3, and scores the first 5 batches of each: **15 normal and 15 anomalous
images**, whose AUROC it writes. Its paths are Windows paths, and Windows (NTFS) lists names in
sorted order, so the 15 anomalous images are the first 15 files of the alphabetically first defect
folder: on *bottle*, ``broken_large/000.png`` to ``014.png`` (large breaks only; none of the small
breaks or the contamination).

The project's tables score the whole test split (DESIGN.md). This module measures the same
scores of the same run on that 30-image subset as well, so that a reader can compare like with
like. Which images the authors scored is read from their code, with that listing order assumed;
the paper itself does not say.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from piade.benchmark.paper import paper_value
from piade.data.common import NORMAL, Sample
from piade.metrics import image_auroc

AUTHORS_SCRIPT = "https://github.com/pankajmishra000/PIADE/blob/main/Testing_mvtech.py"
PER_LABEL = 15  # 5 batches of 3, of the normal loader and of the anomalous one
SUITES = ("mvtec",)  # the released evaluation script covers MVTec AD only
AUTHORS_TITLE = "The authors' evaluation subset (15 normal, 15 anomalous test images)"
AUTHORS_NOTE = (
    "The authors' released evaluation script ([`Testing_mvtech.py`]"
    f"({AUTHORS_SCRIPT})) scores only the first 15 images of `test/good` and the first 15 of the"
    " defect folders read in name order: on *bottle*, `good/000–014` against `broken_large/000–014`"
    " (`piade.benchmark.authors`). Below, the same runs' scores (the paper's score, as in the table"
    " above) on those 30 images, beside the whole test split that every other table uses. The"
    " subset holds only the large breaks, and 15 + 15 images leave a wide interval."
)


def authors_subset(suite: str, samples: Sequence[Sample]) -> list[int] | None:
    """Indices (ascending) of the test ``samples`` the authors' script scores for ``suite``: the
    first :data:`PER_LABEL` normal and the first :data:`PER_LABEL` anomalous samples, ordered by
    folder (``group``) then file name, as a sorted listing reads them. None for a suite the script
    does not cover, or a test split without both labels."""
    if suite not in SUITES:
        return None

    def order(i: int) -> tuple[str, str]:
        return samples[i].group.casefold(), Path(samples[i].source).name.casefold()

    normal = sorted((i for i, s in enumerate(samples) if s.label == NORMAL), key=order)
    anomalous = sorted((i for i, s in enumerate(samples) if s.label != NORMAL), key=order)
    if not normal or not anomalous:
        return None
    return sorted(normal[:PER_LABEL] + anomalous[:PER_LABEL])


def subset_metrics(
    labels: np.ndarray, scores: np.ndarray, subset: Sequence[int], samples: Sequence[Sample]
) -> dict[str, Any]:
    """The image AUROC of ``scores`` on ``subset``, with its counts and the groups it holds."""
    index = np.asarray(subset, dtype=int)
    return {
        "image_auroc": image_auroc(labels[index], scores[index]),
        "n_normal": int((labels[index] == NORMAL).sum()),
        "n_anomalous": int((labels[index] != NORMAL).sum()),
        "groups": dict(sorted(Counter(samples[i].group for i in index).items())),
    }


def authors_table(
    results: Sequence[dict[str, Any]], classes: Sequence[str], methods: Sequence[str], suite: str
) -> list[dict[str, Any]]:
    """Rows {class, method, whole, subset, groups, paper} for each (class, method) whose runs
    recorded the subset (the mean over seeds of each AUROC; runs written before it are left out)."""
    rows = []
    for cls in classes:
        for method in methods:
            runs = [
                r["metrics"]
                for r in results
                if r["class"] == cls
                and r["method"] == method
                and r["metrics"].get("authors_subset")
            ]
            if not runs:
                continue
            rows.append(
                {
                    "class": cls,
                    "method": method,
                    "seeds": len(runs),
                    "whole": statistics.fmean(m["image_auroc"] for m in runs),
                    "subset": statistics.fmean(m["authors_subset"]["image_auroc"] for m in runs),
                    "groups": runs[0]["authors_subset"]["groups"],
                    "paper": paper_value(suite, method, cls),
                }
            )
    return rows


def render_authors(rows: Sequence[dict[str, Any]]) -> str:
    """The table as Markdown."""
    lines = [
        "| class | method | seeds | whole test split | authors' subset | subset's images | paper |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        groups = ", ".join(f"{n} {g}" for g, n in r["groups"].items())
        paper = "–" if r["paper"] is None else f"{r['paper']:.3f}"
        lines.append(
            f"| {r['class']} | {r['method']} | {r['seeds']} | {r['whole']:.3f} | "
            f"**{r['subset']:.3f}** | {groups} | {paper} |"
        )
    return "\n".join(lines) + "\n"
