"""The report's five figures, drawn with ``matplotlib.figure.Figure`` on the Agg canvas (never
pyplot), so reports can be written from any thread without a display, and each rendered to PNG
once (saving a figure renders it again, so it is not drawn first to check it).

Anomaly maps share one colour scale across all tiles so they are comparable: from 0 (or the
smallest map value, if negative) to the 99th percentile of the normal images' map values; anything
higher saturates. An image is predicted anomalous when its score is strictly above the threshold,
as in :mod:`piade.inference.detector`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator
from PIL import Image

from piade.evaluation.report.data import ReportData

log = logging.getLogger(__name__)

DPI = 100
CMAP = "jet"  # anomaly-map overlay
MAP_ALPHA = 0.5  # weight of the heat map over the input
MASK_COLOUR = "magenta"  # absent from jet, so ground-truth outlines stay visible on the overlay
CLASSES = ((0, "normal", "tab:blue"), (1, "anomalous", "tab:red"))
MAX_GRID_INCHES = 16.0  # tiles shrink so a grid stays under ~2000 px wide at DPI
RowFn = Callable[[Axes, np.ndarray], object]  # draws the images with these indices in a row


def render_figures(data: ReportData, max_examples: int) -> tuple[dict[str, bytes], Normalize]:
    """The five figures as PNG files by name, and the anomaly maps' shared colour scale.

    ``max_examples`` normal and as many anomalous images are shown in the example grids: the
    highest-scoring anomalous ones and a spread of normal ones from lowest to highest score. A
    figure that fails to draw is replaced by one that says why.
    """
    blocks = _pick_examples(data, max_examples)
    norm = Normalize(*_map_scale(data))
    drawers: dict[str, Callable[[], Figure]] = {
        "reconstructions": lambda: _reconstruction_figure(data, blocks),
        "anomaly_maps": lambda: _map_figure(data, blocks, norm),
        "roc": lambda: _roc_figure(data),
        "score_histogram": lambda: _histogram_figure(data),
        "vector_lengths": lambda: _lengths_figure(data),
    }
    return {name: _rendered(name, draw) for name, draw in drawers.items()}, norm


def _rendered(name: str, draw: Callable[[], Figure]) -> bytes:
    """``draw()`` as PNG, or a figure saying why it could not be drawn: one figure's failure must
    not cost the report its other figures (the metrics are written before the report)."""
    try:
        return _png(draw())  # rendering errors surface here too
    except Exception as error:
        log.warning("report: could not draw %s.png (%s: %s)", name, type(error).__name__, error)
        fig = Figure(figsize=(6.0, 3.0), dpi=DPI)
        fig.text(0.5, 0.6, f"{name}: could not be drawn", ha="center", fontsize=13)
        fig.text(0.5, 0.4, f"{type(error).__name__}: {error}"[:90], ha="center", fontsize=9)
        fig.patch.set_facecolor("#f3e3e3")
        return _png(fig)


def _png(fig: Figure) -> bytes:
    """``fig`` rendered on the Agg canvas and encoded as an RGB PNG at zlib level 3.

    The figures are opaque, so the alpha channel Agg renders is dropped; with it, and at
    matplotlib's level 6, the two example grids took 2.6 times as long to encode and were 4–6 %
    larger (docs/performance.md).
    """
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


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
