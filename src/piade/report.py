"""A visual evaluation report: five PNG figures and one self-contained HTML page.

:func:`write_report` takes a :class:`ReportData` (what the evaluation engine scored) and writes
``reconstructions.png``, ``anomaly_maps.png``, ``roc.png``, ``score_histogram.png``,
``vector_lengths.png`` and ``report.html`` (all figures embedded as base64 data URIs, inline CSS,
no scripts). Figures are drawn with ``matplotlib.figure.Figure`` on the Agg canvas, never pyplot,
so reports can be written from any thread without a display.

Anomaly maps share one colour scale across all tiles so they are comparable: from 0 (or the
smallest map value, if negative) to the 99th percentile of the normal images' map values; anything
higher saturates. An image is predicted anomalous when its score is strictly above the threshold,
as in :mod:`piade.detector`.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from piade.metrics import vector_statistics

log = logging.getLogger(__name__)

__all__ = ["ReportData", "write_report"]

DPI = 100
CMAP = "jet"  # anomaly-map overlay
MAP_ALPHA = 0.5  # weight of the heat map over the input
MASK_COLOUR = "magenta"  # absent from jet, so ground-truth outlines stay visible on the overlay
CLASSES = ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red"))
TOP_ROWS = 20  # images listed in the HTML table
MAX_GRID_INCHES = 16.0  # tiles shrink so a grid stays under ~2000 px wide at DPI
_SHAPES: tuple[tuple[str, tuple[str | int, ...]], ...] = (
    ("images", ("N", "H", "W", 3)),
    ("reconstructions", ("N", "H", "W", 3)),
    ("anomaly_maps", ("N", "H", "W")),
    ("labels", ("N",)),
    ("scores", ("N",)),
    ("lengths", ("N", "J")),
    ("masks", ("N", "H", "W")),
    ("decoded", ("N",)),
)
_CAPTIONS = {  # one line under each figure in the HTML page
    "reconstructions": "Inputs above their reconstructions; above each: score (red if flagged).",
    "anomaly_maps": "Anomaly maps over the inputs, one colour scale for all tiles: {lo:.3g} to "
    "{hi:.3g} (the 99th percentile of {basis}){outline}.",
    "roc": "ROC curve of the image scores (tied scores form one point); dot: decision threshold.",
    "score_histogram": "Image scores by true class on shared bins; dashed: decision threshold.",
    "vector_lengths": "Lengths of the instantiation vectors by true class.",
}

RowFn = Callable[[Axes, np.ndarray], object]  # draws the images with these indices in a row


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows about N scored test images; validated on construction."""

    images: np.ndarray  # (N, H, W, 3) uint8, the inputs as the model saw them
    reconstructions: np.ndarray  # (N, H, W, 3) uint8
    anomaly_maps: np.ndarray  # (N, H, W) float, higher = more anomalous
    labels: np.ndarray  # (N,) int, 0 normal / 1 anomalous
    scores: np.ndarray  # (N,) float image anomaly scores
    threshold: float  # decision threshold on `scores` (chosen on normal data only)
    lengths: np.ndarray  # (N, J) float, lengths of the J instantiation vectors (J = 1 or 2)
    paths: list[str]  # (N,) where each image came from
    masks: np.ndarray | None = None  # (N, H, W) bool ground truth, or None when unknown
    groups: list[str] | None = None  # (N,) e.g. defect type ("good", "broken_large", ...)
    decoded: np.ndarray | None = None  # (N,) int, the vector decoded (the longest), or None

    def __post_init__(self) -> None:
        """Coerce arrays with ``np.asarray`` and check shapes, dtypes and values."""
        for name, _ in _SHAPES:
            if getattr(self, name) is not None:
                object.__setattr__(self, name, np.asarray(getattr(self, name)))
        _validate(self)


def _check_shape(
    name: str, array: np.ndarray, spec: tuple[str | int, ...], dims: dict[str, int]
) -> None:
    """Check ``array`` against ``spec`` (letters are bound to sizes in ``dims`` on first sight)."""
    if array.ndim == len(spec):
        for letter, size in zip(spec, array.shape, strict=True):
            if isinstance(letter, str):
                dims.setdefault(letter, size)
    expected = tuple(dims.get(s, -1) if isinstance(s, str) else s for s in spec)
    if array.shape != expected:
        letters = ", ".join(map(str, spec))
        raise ValueError(
            f"ReportData.{name} must have shape ({letters}) = {expected}; got {array.shape}"
        )


def _validate(d: ReportData) -> None:
    """Raise ``ValueError`` naming the first field whose shape, dtype or values are wrong."""
    dims: dict[str, int] = {}
    for name, spec in _SHAPES:
        if getattr(d, name) is not None:
            _check_shape(name, getattr(d, name), spec, dims)
    if dims["N"] == 0 or dims["J"] == 0:
        raise ValueError(f"ReportData needs at least one image and one vector length; {dims=}")
    for name in ("images", "reconstructions"):
        if (dtype := getattr(d, name).dtype) != np.uint8:
            raise ValueError(f"ReportData.{name} must be uint8 (0-255); got {dtype}")
    for name in ("anomaly_maps", "scores", "lengths"):
        values = getattr(d, name)
        if not np.issubdtype(values.dtype, np.number) or not np.all(np.isfinite(values)):
            raise ValueError(f"ReportData.{name} must be finite numbers; got dtype {values.dtype}")
    for name in ("labels", "masks"):
        values = getattr(d, name)
        if values is not None and not np.all((values == 0) | (values == 1)):
            raise ValueError(f"ReportData.{name} must be binary (0 = normal, 1 = anomalous)")
    if not isinstance(d.threshold, numbers.Real) or not np.isfinite(d.threshold):
        raise ValueError(f"ReportData.threshold must be a finite number; got {d.threshold!r}")
    for name in ("paths", "groups"):
        items = getattr(d, name)
        if items is not None and len(items) != dims["N"]:
            raise ValueError(f"ReportData.{name} must have N = {dims['N']} items; got {len(items)}")


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
    blocks = _pick_examples(data, max_examples)
    norm = Normalize(*_map_scale(data))
    drawers: dict[str, Callable[[], Figure]] = {
        "reconstructions": lambda: _reconstruction_figure(data, blocks),
        "anomaly_maps": lambda: _map_figure(data, blocks, norm),
        "roc": lambda: _roc_figure(data),
        "score_histogram": lambda: _histogram_figure(data),
        "vector_lengths": lambda: _lengths_figure(data),
    }
    figures = {name: _drawn(name, draw) for name, draw in drawers.items()}
    outline = f"; {MASK_COLOUR} outlines: ground-truth masks" if data.masks is not None else ""
    basis = "normal images' maps" if (data.labels == 0).any() else "all maps; no normal images"
    embedded = []
    for name, fig in figures.items():
        buffer = io.BytesIO()
        FigureCanvasAgg(fig).print_png(buffer)
        (out / f"{name}.png").write_bytes(buffer.getvalue())
        caption = _CAPTIONS[name].format(lo=norm.vmin, hi=norm.vmax, basis=basis, outline=outline)
        embedded.append((name, buffer.getvalue(), caption))
    page = out / "report.html"
    page.write_text(_html(data, title, metrics, embedded), encoding="utf-8")
    return page


def _drawn(name: str, draw: Callable[[], Figure]) -> Figure:
    """``draw()``, or a figure saying why it could not be drawn: one figure's failure must not
    cost the report its other figures (the metrics are written before the report)."""
    try:
        fig = draw()
        FigureCanvasAgg(fig).draw()  # rendering errors surface here, not when saving
        return fig
    except Exception as error:
        log.warning("report: could not draw %s.png (%s: %s)", name, type(error).__name__, error)
        fig = Figure(figsize=(6.0, 3.0), dpi=DPI)
        fig.text(0.5, 0.6, f"{name}: could not be drawn", ha="center", fontsize=13)
        fig.text(0.5, 0.4, f"{type(error).__name__}: {error}"[:90], ha="center", fontsize=9)
        fig.patch.set_facecolor("#f3e3e3")
        return fig


def _pick_examples(data: ReportData, k: int) -> list[tuple[str, np.ndarray]]:
    """(heading, indices) of normal images at evenly spaced score ranks and the top-k anomalous."""
    normal = np.flatnonzero(data.labels == 0)
    normal = normal[np.argsort(data.scores[normal], kind="stable")]  # ascending scores
    normal = normal[
        np.unique(np.linspace(0, len(normal) - 1, min(k, len(normal))).round().astype(int))
    ]
    anomalous = np.flatnonzero(data.labels == 1)
    anomalous = anomalous[np.argsort(-data.scores[anomalous], kind="stable")][:k]
    return [
        (_heading("Normal", len(normal), int((data.labels == 0).sum()), "a spread of"), normal),
        (_heading("Anomalous", len(anomalous), int(data.labels.sum()), "the highest"), anomalous),
    ]


def _heading(kind: str, shown: int, total: int, which: str) -> str:
    """Title of one class's block in an example grid."""
    return f"{kind}: {shown} of {total}, {which} scores" if total else f"{kind}: none in this set"


def _map_scale(data: ReportData) -> tuple[float, float]:
    """Shared colour range of the anomaly maps (see the module docstring)."""
    maps = data.anomaly_maps
    lo = min(0.0, float(maps.min()))
    normal = maps[data.labels == 0]
    hi = float(np.percentile(normal if normal.size else maps, 99.0))
    if hi <= lo:
        hi = float(maps.max())
    return lo, hi if hi > lo else lo + 1.0


def _mosaic(tiles: np.ndarray, fill: float) -> np.ndarray:
    """Tiles (k, H, W, ...) side by side, ``fill`` in the gaps: (H, k * (W + gap) - gap, ...)."""
    k, h, w = tiles.shape[:3]
    step = w + _gap(w)
    out = np.full((h, k * step - _gap(w), *tiles.shape[3:]), fill, dtype=tiles.dtype)
    for j, tile in enumerate(tiles):
        out[:, j * step : j * step + w] = tile
    return out


def _gap(width: int) -> int:
    """Pixels between two tiles of a mosaic."""
    return max(1, width // 16)


def _caption_tiles(ax: Axes, data: ReportData, idx: np.ndarray) -> None:
    """Score (and group) above each tile of a mosaic, red when above the threshold."""
    w = data.images.shape[2]
    texts = [f"{data.scores[i]:.3g}" for i in idx]
    if data.groups is not None:
        texts = [f"{t}\n{str(data.groups[i])[:16]}" for t, i in zip(texts, idx, strict=True)]
    ax.set_xticks(np.arange(len(idx)) * (w + _gap(w)) + (w - 1) / 2, texts, fontsize=8)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False, length=0)
    for label, i in zip(ax.get_xticklabels(), idx, strict=True):
        label.set_color("tab:red" if data.scores[i] > data.threshold else "black")


def _frame_tiles(ax: Axes, k: int, h: int, w: int) -> None:
    """A thin frame around each of the ``k`` tiles of a mosaic instead of one around the row."""
    ax.set_frame_on(False)
    for x in np.arange(k) * (w + _gap(w)) - 0.5:
        ax.add_patch(Rectangle((x, -0.5), w, h, fill=False, lw=0.8, clip_on=False))


def _example_grid(
    data: ReportData,
    blocks: list[tuple[str, np.ndarray]],
    rows: Sequence[tuple[str, RowFn]],
    title: str,
    colours: ScalarMappable | None = None,
) -> Figure:
    """One labelled block per class; in it, one mosaic row per entry of ``rows``."""
    ncols = max([len(idx) for _, idx in blocks] + [1])
    h, w = data.images.shape[1:3]
    tile = min(1.7, MAX_GRID_INCHES / ncols)  # inches per tile
    row_height = tile * float(np.clip(h / w, 0.5, 2.0)) + 0.35  # with the tile captions
    heights = [len(rows) * row_height + 0.4 if len(idx) else 0.4 for _, idx in blocks]
    width = ncols * tile * 1.06 + (2.5 if colours else 1.5)  # + row labels (and colour bar)
    fig = Figure(figsize=(width, sum(heights) + 0.4), dpi=DPI, layout="constrained")
    fig.suptitle(title, fontsize=13)
    subfigures = np.asarray(fig.subfigures(len(blocks), 1, squeeze=False, height_ratios=heights))
    for sub, (name, idx) in zip(subfigures.ravel(), blocks, strict=True):
        sub.suptitle(name, fontsize=11, fontweight="bold")
        if len(idx) == 0:
            continue
        axes = sub.subplots(len(rows), 1, squeeze=False)[:, 0]
        for ax, (row_name, draw) in zip(axes, rows, strict=True):
            draw(ax, idx)
            ax.set(xticks=[], yticks=[], anchor="W")
            ax.set_ylabel(row_name, rotation=0, ha="right", va="center")
            _frame_tiles(ax, len(idx), h, w)
        _caption_tiles(axes[0], data, idx)
        if colours is not None:
            sub.colorbar(
                colours, ax=[*axes], shrink=0.8, aspect=15, panchor=False, label="anomaly map"
            )
    return fig


def _reconstruction_figure(data: ReportData, blocks: list[tuple[str, np.ndarray]]) -> Figure:
    """The paper's Fig. 3 layout: inputs above their reconstructions."""
    rows: list[tuple[str, RowFn]] = [
        ("input", lambda ax, idx: ax.imshow(_mosaic(data.images[idx], 255))),
        ("reconstruction", lambda ax, idx: ax.imshow(_mosaic(data.reconstructions[idx], 255))),
    ]
    return _example_grid(data, blocks, rows, "Reconstructions (above each tile: image score)")


def _map_figure(data: ReportData, blocks: list[tuple[str, np.ndarray]], norm: Normalize) -> Figure:
    """Inputs above their anomaly maps blended in, with ground-truth outlines where known."""

    def overlay(ax: Axes, idx: np.ndarray) -> None:
        ax.imshow(_mosaic(data.images[idx], 255))
        heat = np.ma.masked_invalid(_mosaic(data.anomaly_maps[idx].astype(float), np.nan))
        ax.imshow(heat, cmap=CMAP, norm=norm, alpha=MAP_ALPHA)
        mask = _mosaic(data.masks[idx], 0) if data.masks is not None else None
        if mask is not None and mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=MASK_COLOUR, linewidths=1.5)

    rows: list[tuple[str, RowFn]] = [
        ("input", lambda ax, idx: ax.imshow(_mosaic(data.images[idx], 255))),
        ("anomaly map", overlay),
    ]
    title = "Anomaly maps, one colour scale" + (
        f" ({MASK_COLOUR}: ground truth)" if data.masks is not None else " (no ground-truth masks)"
    )
    return _example_grid(data, blocks, rows, title, ScalarMappable(norm=norm, cmap=CMAP))


def _roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """False and true positive rates at every distinct score (ties form one point), and AUROC.

    Points run from (0, 0) to (1, 1), as ``sklearn.metrics.roc_curve(drop_intermediate=False)``;
    both classes must be present.
    """
    order = np.argsort(-scores, kind="stable")
    ranked, positive = scores[order], labels[order] == 1
    last = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]  # last index of each tie group
    tps = np.r_[0, np.cumsum(positive)[last]]
    fps = np.r_[0, last + 1 - tps[1:]]
    fpr, tpr = fps / fps[-1], tps / tps[-1]
    return fpr, tpr, float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _roc_figure(data: ReportData) -> Figure:
    """ROC curve with AUROC, the chance diagonal and the operating point; a note if undefined."""
    fig = Figure(figsize=(5.5, 5.0), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.set_title("ROC curve (image level)")
    n_anomalous = int((data.labels == 1).sum())
    if n_anomalous in (0, data.labels.size):
        only = "anomalous" if n_anomalous else "normal"
        note = f"ROC undefined: all {data.labels.size} images are {only};\nit needs both classes."
        ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=12)
        ax.set_axis_off()
        return fig
    fpr, tpr, auroc = _roc(data.labels, data.scores)
    ax.plot(fpr, tpr, color="tab:red", lw=2, label=f"ROC (AUROC = {auroc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
    flagged = data.scores > data.threshold
    point = (flagged[data.labels == 0].mean(), flagged[data.labels == 1].mean())
    ax.plot(*point, "ko", label=f"decision threshold ({data.threshold:.4g})")
    ax.set(xlim=(-0.01, 1.01), ylim=(-0.01, 1.01), aspect="equal", xlabel="False positive rate")
    ax.set_ylabel("True positive rate")
    ax.legend(loc="lower right")
    return fig


def _class_histogram(ax: Axes, values: np.ndarray, labels: np.ndarray, xlabel: str) -> None:
    """Overlaid normal / anomalous histograms on shared bins; an empty class gets a legend note."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        xlabel += f" ({int((~finite).sum())} not finite, left out)"
    values, labels = values[finite], labels[finite]
    edges = _bin_edges(values, bins=int(np.clip(2 * np.sqrt(values.size), 10, 40)))
    for cls, name, colour in CLASSES:
        part = values[labels == cls]
        label = f"{name} (n={part.size})"
        if part.size:
            ax.hist(part, bins=edges.tolist(), alpha=0.55, color=colour, label=label)
        else:
            ax.plot([], [], " ", label=f"no {name} images")
    ax.set(xlabel=xlabel, ylabel="images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _bin_edges(values: np.ndarray, *, bins: int) -> np.ndarray:
    """Shared histogram bins; values (all finite) that are equal or nearly so get a visible range."""
    if values.size == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):  # one value, up to float32 rounding
        pad = max(1e-3 * abs(lo), 1e-6)
        return np.linspace(lo - pad, hi + pad, bins + 1)
    return np.histogram_bin_edges(values, bins=bins)


def _histogram_figure(data: ReportData) -> Figure:
    """Score histograms by class with the decision threshold."""
    fig = Figure(figsize=(7.0, 4.5), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    _class_histogram(ax, data.scores, data.labels, "image anomaly score")
    ax.axvline(data.threshold, color="black", ls="--", label=f"threshold = {data.threshold:.4g}")
    ax.set_title("Score distribution by true class")
    ax.legend()
    return fig


def _lengths_figure(data: ReportData) -> Figure:
    """One histogram panel per instantiation vector, plus a scatter of the two when J = 2."""
    j = data.lengths.shape[1]
    panels = j + (j == 2)
    fig = Figure(figsize=(min(4.6 * panels, 18.0) + 0.8, 4.2), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, panels, squeeze=False)[0]
    fig.suptitle("Instantiation-vector lengths by true class")
    for v in range(j):
        _class_histogram(axes[v], data.lengths[:, v], data.labels, f"length of vector {v + 1}")
        axes[v].set_title(f"vector {v + 1}")
        axes[v].legend(fontsize=8)
    if j == 2:
        ax = axes[2]
        for cls, name, colour in CLASSES:
            part = data.lengths[data.labels == cls]
            label = f"{name} (n={len(part)})"
            ax.scatter(part[:, 0], part[:, 1], s=14, alpha=0.7, color=colour, label=label)
        ax.set(xlabel="length of vector 1", ylabel="length of vector 2", title="vector 1 vs 2")
        ax.legend(fontsize=8)
    return fig


def _cell(value: object) -> str:
    """A metric value for the table: None as n/a, floats with 4 decimals, all escaped."""
    if value is None:
        return "n/a"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4f}"
    return html.escape(str(value))


def _html(
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
    vectors = _vector_table(data)
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


_CSS = (
    "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;"
    "text-align:left;font-size:.9em}td{word-break:break-all}figure{margin:1.5em 0}"
    "img{max-width:100%;height:auto;border:1px solid #eee}figcaption{color:#555;font-size:.9em}"
)
