"""What the report shows about N scored test images (:class:`ReportData`), validated on construction."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

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
