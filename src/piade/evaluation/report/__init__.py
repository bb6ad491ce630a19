"""A visual evaluation report: five PNG figures and one self-contained HTML page.

:func:`write_report` takes a :class:`ReportData` (what the evaluation scored) and writes
``reconstructions.png``, ``anomaly_maps.png``, ``roc.png``, ``score_histogram.png``,
``vector_lengths.png`` and ``report.html`` (all figures embedded as base64 data URIs, inline CSS,
no scripts). :mod:`~piade.evaluation.report.data` holds and checks what is shown,
:mod:`~piade.evaluation.report.figures` draws, :mod:`~piade.evaluation.report.html` lays out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from piade.evaluation.report.data import ReportData
from piade.evaluation.report.figures import MASK_COLOUR, render_figures
from piade.evaluation.report.html import page

__all__ = ["ReportData", "write_report"]

_CAPTIONS = {  # one line under each figure in the HTML page
    "reconstructions": "Inputs above their reconstructions; above each: score (red if flagged).",
    "anomaly_maps": "Anomaly maps over the inputs, one colour scale for all tiles: {lo:.3g} to "
    "{hi:.3g} (the 99th percentile of {basis}){outline}.",
    "roc": "ROC curve of the image scores (tied scores form one point); dot: decision threshold.",
    "score_histogram": "Image scores by true class on shared bins; dashed: decision threshold.",
    "vector_lengths": "Lengths of the instantiation vectors by true class.",
}


def write_report(
    out_dir: str | os.PathLike[str],
    data: ReportData,
    *,
    metrics: Mapping[str, float | int | str | None],
    title: str,
    max_examples: int = 8,
) -> Path:
    """Write the five figures and ``report.html`` into ``out_dir`` (created); return the HTML path.

    ``max_examples`` normal and as many anomalous images are shown in the example grids: the
    highest-scoring anomalous ones and a spread of normal ones from lowest to highest score.
    """
    if max_examples < 1:
        raise ValueError(f"max_examples must be at least 1; got {max_examples}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures, norm = render_figures(data, max_examples)
    outline = f"; {MASK_COLOUR} outlines: ground-truth masks" if data.masks is not None else ""
    basis = "normal images' maps" if (data.labels == 0).any() else "all maps; no normal images"
    embedded = []
    for name, png in figures.items():
        (out / f"{name}.png").write_bytes(png)
        caption = _CAPTIONS[name].format(lo=norm.vmin, hi=norm.vmax, basis=basis, outline=outline)
        embedded.append((name, png, caption))
    path = out / "report.html"
    path.write_text(page(data, title, metrics, embedded), encoding="utf-8")
    return path
