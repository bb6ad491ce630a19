"""Metrics: exact hand-made cases, cross-checks against scikit-learn and brute force, properties."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage
from sklearn import metrics as skm

from piade.metrics import (
    aupro,
    auroc_interval_from_counts,
    f1_max,
    group_statistics,
    image_auroc,
    image_auroc_interval,
    pixel_auroc,
    pro_curve,
    roc_curve,
    vector_statistics,
)

measure = pytest.importorskip("skimage.measure")  # an independent connected-components labeller

FAST = settings(max_examples=150, deadline=None, database=None)


# ---------------------------------------------------------------- brute-force references


def brute_force_aupro(
    masks: np.ndarray, maps: np.ndarray, fpr_limit: float, connectivity: int = 8
) -> float:
    """Loop over every distinct threshold; integrate segment by segment, clipped at fpr_limit."""
    regions = []  # one (N, H, W) bool array per connected component
    for i, mask in enumerate(masks):
        labelled = measure.label(mask, connectivity=2 if connectivity == 8 else 1)
        for r in range(1, labelled.max() + 1):
            region = np.zeros(masks.shape, dtype=bool)
            region[i] = labelled == r
            regions.append(region)
    normal = ~masks
    points = [(0.0, 0.0)]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        above = maps >= t
        fpr = above[normal].mean()
        pro = np.mean([above[region].mean() for region in regions])
        points.append((float(fpr), float(pro)))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= fpr_limit:
            break
        if x1 == x0:
            continue  # a vertical step adds no area
        x_end = min(x1, fpr_limit)
        y_end = y0 + (y1 - y0) * (x_end - x0) / (x1 - x0)
        area += (x_end - x0) * (y0 + y_end) / 2
    return area / fpr_limit


def brute_force_f1(labels: np.ndarray, scores: np.ndarray) -> dict[float, float]:
    """F1 at every distinct threshold t (anomalous when score >= t)."""
    f1 = {}
    for t in np.unique(scores):
        predicted = scores >= t
        tp = np.sum(predicted & (labels == 1))
        fp = np.sum(predicted & (labels == 0))
        fn = np.sum(~predicted & (labels == 1))
        f1[float(t)] = 2 * tp / (2 * tp + fp + fn)
    return f1


def row(*values: float) -> np.ndarray:
    """A single 1 × W image: shape (1, 1, W)."""
    return np.asarray(values, dtype=np.float64)[None, None, :]


# ---------------------------------------------------------------- image AUROC


@pytest.mark.parametrize("seed", range(5))
def test_image_auroc_matches_sklearn_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 50)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(size=50) + labels, 1)  # rounding creates ties
    assert image_auroc(labels, scores) == pytest.approx(
        skm.roc_auc_score(labels, scores), abs=1e-12
    )


@pytest.mark.parametrize(
    ("labels", "scores", "expected"),
    [
        ([0, 0, 1, 1], [0.3, 0.3, 0.3, 0.3], 0.5),  # all tied: every pair counts ½
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),  # perfectly separated
        ([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2], 0.0),  # reversed
        # anomalous 2 beats normal 1, ties normal 2 (½); anomalous 3 beats both: 3.5 / 4 pairs
        ([0, 0, 1, 1], [1, 2, 2, 3], 0.875),
        ([True, False], [1.0, 0.0], 1.0),  # bool labels
    ],
)
def test_image_auroc_exact_cases(labels: list[int], scores: list[float], expected: float) -> None:
    assert image_auroc(labels, scores) == pytest.approx(expected, abs=1e-15)


def test_image_auroc_accepts_torch_tensors() -> None:
    torch = pytest.importorskip("torch")
    labels, scores = torch.tensor([0, 1, 0, 1]), torch.tensor([0.1, 0.9, 0.4, 0.3])
    assert image_auroc(labels, scores) == pytest.approx(0.75)  # 3 of 4 pairs ordered correctly


def test_roc_curve_wraps_sklearn() -> None:
    rng = np.random.default_rng(0)
    labels, scores = rng.integers(0, 2, 40), rng.normal(size=40)
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    expected = skm.roc_curve(labels, scores, drop_intermediate=False)
    for got, want in zip((fpr, tpr, thresholds), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert thresholds[0] == np.inf
    assert skm.auc(fpr, tpr) == pytest.approx(image_auroc(labels, scores))


# ---------------------------------------------------------------- F1-max


def test_f1_max_hand_case() -> None:
    # labels 1 0 1 0 at scores 4 3 2 1: F1 = 2/3, 1/2, 4/5, 2/3 at t = 4, 3, 2, 1 -> 0.8 at t = 2
    assert f1_max([1, 0, 1, 0], [4, 3, 2, 1]) == pytest.approx((0.8, 2.0))


@pytest.mark.parametrize("seed", range(10))
def test_f1_max_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 30)
    labels[0] = 1
    scores = rng.integers(0, 8, 30).astype(float)  # many ties
    f1, threshold = f1_max(labels, scores)
    by_threshold = brute_force_f1(labels, scores)
    assert f1 == pytest.approx(max(by_threshold.values()), abs=1e-12)
    assert by_threshold[threshold] == pytest.approx(f1, abs=1e-12)  # the threshold achieves it


def test_f1_max_with_only_anomalous_images() -> None:
    assert f1_max([1, 1], [0.2, 0.7]) == pytest.approx((1.0, 0.2))


# ---------------------------------------------------------------- pixel AUROC


@pytest.mark.parametrize("seed", range(3))
def test_pixel_auroc_matches_sklearn_on_flattened_arrays(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = rng.random((4, 16, 16)) < 0.2
    maps = rng.integers(0, 20, masks.shape) + 3 * masks  # integer maps: many ties across classes
    expected = skm.roc_auc_score(masks.ravel(), maps.ravel())
    assert pixel_auroc(masks, maps) == pytest.approx(expected, abs=1e-12)


def test_pixel_auroc_shapes_and_types() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 8, 8)) < 0.3
    maps = rng.normal(size=(3, 8, 8)).astype(np.float32)
    expected = pixel_auroc(masks, maps)
    assert pixel_auroc(masks[:, None], maps[:, None]) == expected  # (N, 1, H, W)
    assert pixel_auroc(masks[:, None], maps) == expected  # channel axis on one side only
    assert pixel_auroc(masks.astype(np.float32), maps) == expected  # 0.0 / 1.0 masks
    assert pixel_auroc(masks[0], maps[0]) == pixel_auroc(masks[:1], maps[:1])  # one (H, W) image
    torch = pytest.importorskip("torch")
    assert pixel_auroc(torch.from_numpy(masks), torch.from_numpy(maps)) == expected


def test_pixel_auroc_exact_cases() -> None:
    masks = row(0, 0, 1, 1)
    assert pixel_auroc(masks, row(1, 2, 3, 4)) == 1.0
    assert pixel_auroc(masks, row(4, 3, 2, 1)) == 0.0
    assert pixel_auroc(masks, row(5, 5, 5, 5)) == 0.5
    assert pixel_auroc(masks, row(1, 2, 2, 3)) == 0.875  # as the image case with one tie


# ---------------------------------------------------------------- AUPRO: hand-computed cases


def test_aupro_half_of_the_region_above_all_normal_pixels() -> None:
    # One region of 4 pixels: two score 9 (above every normal pixel), two score -1 (below all).
    # Curve: (0, 0) -> (0, 1/2) at t = 9, flat at PRO 1/2 while FPR runs 1/4 .. 1 (t = 4 .. 1),
    # then up to (1, 1) at t = -1. The area up to any limit L is L/2, so AUPRO = 1/2.
    masks = row(1, 1, 1, 1, 0, 0, 0, 0)
    maps = row(9, 9, -1, -1, 1, 2, 3, 4)
    for limit in (0.3, 0.5, 1.0):
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(0.5, abs=1e-15)


def test_aupro_tie_between_classes_is_a_diagonal_interpolated_at_the_limit() -> None:
    # Region {5, 2}; normal pixels 3, 2, 1, 0. Points (FPR, PRO), t = inf, 5, 3, 2, 1, 0:
    # (0, 0), (0, .5), (.25, .5), (.5, 1), (.75, 1), (1, 1) — the tie at t = 2 is the diagonal
    # (.25, .5) -> (.5, 1), slope 2, so PRO(.3) = .6.
    # Up to .3: .25 · .5 + .05 · (.5 + .6) / 2 = .125 + .0275 = .1525; / .3 = 61/120.
    # Up to 1:  .125 + .25 · (.5 + 1) / 2 + .5 · 1 = .8125 = 13/16.
    masks, maps = row(1, 1, 0, 0, 0, 0), row(5, 2, 3, 2, 1, 0)
    assert aupro(masks, maps) == pytest.approx(61 / 120, abs=1e-15)
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(13 / 16, abs=1e-15)
    fpr, pro, thresholds = pro_curve(masks, maps)
    np.testing.assert_allclose(fpr, [0, 0, 0.25, 0.5, 0.75, 1], atol=1e-15)
    np.testing.assert_allclose(pro, [0, 0.5, 0.5, 1, 1, 1], atol=1e-15)
    np.testing.assert_array_equal(thresholds, [np.inf, 5, 3, 2, 1, 0])


def test_aupro_weighs_regions_equally_not_by_pixel_count() -> None:
    # Region A: one pixel at (0, 0); region B: the 3×3 block at rows/cols 2..4 (not touching A,
    # not even diagonally); 15 normal pixels at 0. Whichever region alone scores above the normal
    # pixels, PRO = 1/2 from FPR 0 to 1, so AUPRO = 1/2 both ways. Weighting by pixel count would
    # give 1/10 and 9/10 instead.
    masks = np.zeros((1, 5, 5), dtype=bool)
    masks[0, 0, 0] = True
    masks[0, 2:5, 2:5] = True
    small_high = np.where(masks, -10.0, 0.0)
    small_high[0, 0, 0] = 10.0
    large_high = np.where(masks, 10.0, 0.0)
    large_high[0, 0, 0] = -10.0
    assert aupro(masks, small_high) == pytest.approx(0.5, abs=1e-15)
    assert aupro(masks, large_high) == pytest.approx(0.5, abs=1e-15)


def test_aupro_perfect_map_is_one_and_reversed_map_is_zero() -> None:
    rng = np.random.default_rng(0)
    masks = ndimage.binary_dilation(rng.random((3, 24, 24)) < 0.02, iterations=2)
    perfect = 2.0 * masks + rng.random(masks.shape)  # anomalous in [2, 3), normal in [0, 1)
    assert aupro(masks, perfect) == pytest.approx(1.0, abs=1e-12)
    assert aupro(masks, perfect, fpr_limit=0.05) == pytest.approx(1.0, abs=1e-12)
    assert aupro(masks, -perfect) == 0.0


@pytest.mark.parametrize("limit", [0.3, 0.1, 1.0])
def test_aupro_of_a_constant_map_is_half_the_limit(limit: float) -> None:
    # One threshold: the curve is the diagonal (0, 0) -> (1, 1). Area up to L is L²/2; / L = L/2.
    masks = np.zeros((2, 6, 6), dtype=bool)
    masks[0, 1:3, 1:4] = True
    masks[1, 4, 4] = True
    constant = np.full(masks.shape, 0.7)
    assert aupro(masks, constant, fpr_limit=limit) == pytest.approx(limit / 2, abs=1e-15)


def test_aupro_of_a_constant_map_at_the_default_limit() -> None:
    masks = row(1, 0, 0)
    assert aupro(masks, np.zeros(masks.shape)) == pytest.approx(0.15, abs=1e-15)  # 0.3 / 2


def test_aupro_connectivity() -> None:
    # Mask pixels (0, 0), (1, 1), (1, 2); only (0, 0) scores above the normal pixels.
    # 8-connectivity: one region of 3 pixels, PRO = 1/3 from FPR 0 to 1 -> AUPRO 1/3.
    # 4-connectivity: {(0, 0)} and {(1, 1), (1, 2)}, PRO = (1 + 0) / 2 -> AUPRO 1/2.
    masks = np.zeros((1, 3, 3), dtype=bool)
    masks[0, [0, 1, 1], [0, 1, 2]] = True
    maps = np.where(masks, -5.0, 0.0)
    maps[0, 0, 0] = 5.0
    assert aupro(masks, maps) == pytest.approx(1 / 3, abs=1e-15)
    assert aupro(masks, maps, connectivity=8) == pytest.approx(1 / 3, abs=1e-15)
    assert aupro(masks, maps, connectivity=4) == pytest.approx(1 / 2, abs=1e-15)


def test_aupro_regions_never_span_images() -> None:
    # Image 0: region {p0} at 5; image 1: region {p0, p1} at -5, at the same place. As two regions
    # PRO = (1 + 0) / 2 = 1/2 over FPR 0..1 -> 1/2; merged across images it would be 1/3.
    masks = np.array([[[1, 0, 0]], [[1, 1, 0]]], dtype=bool)  # (2, 1, 3)
    maps = np.array([[[5, 0, 0]], [[-5, -5, 0]]], dtype=float)
    assert aupro(masks, maps) == pytest.approx(0.5, abs=1e-15)
    assert aupro(masks[:, None], maps[:, None]) == pytest.approx(0.5, abs=1e-15)  # (N, 1, H, W)


# ---------------------------------------------------------------- AUPRO: cross-checks, properties


@pytest.mark.parametrize("seed", range(4))
def test_aupro_matches_brute_force_on_random_blobs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    masks = ndimage.gaussian_filter(rng.random((3, 20, 20)), (0, 2, 2)) > 0.56
    masks[0, 0, 0] = True  # at least one region
    maps = np.round(masks + rng.normal(0, 0.6, masks.shape), 1)  # rounding creates ties
    for limit in (0.3, 0.05, 1.0):
        for connectivity in (8, 4):
            exact = aupro(masks, maps, fpr_limit=limit, connectivity=connectivity)
            expected = brute_force_aupro(masks, maps, limit, connectivity)
            assert exact == pytest.approx(expected, abs=1e-12)


small_masks_and_maps = st.tuples(
    st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**32 - 1)
).map(
    lambda args: (
        np.random.default_rng(args[3]).random(args[:3]) < 0.4,
        np.random.default_rng(args[3] + 1).integers(0, 6, args[:3]),
    )
)


@FAST
@given(
    data=small_masks_and_maps,
    limit=st.floats(0.01, 1.0),
    connectivity=st.sampled_from([4, 8]),
)
def test_aupro_property_matches_brute_force(
    data: tuple[np.ndarray, np.ndarray], limit: float, connectivity: int
) -> None:
    masks, maps = data
    assume(masks.any() and not masks.all())  # else undefined (see test_errors)
    exact = aupro(masks, maps, fpr_limit=limit, connectivity=connectivity)
    assert exact == pytest.approx(brute_force_aupro(masks, maps, limit, connectivity), abs=1e-12)


@FAST
@given(
    masks=hnp.arrays(bool, hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7)),
    seed=st.integers(0, 2**32 - 1),
    limit=st.floats(0.01, 1.0),
)
def test_aupro_property_range_and_monotone_invariance(
    masks: np.ndarray, seed: int, limit: float
) -> None:
    assume(masks.any() and not masks.all())
    maps = np.random.default_rng(seed).integers(0, 6, masks.shape)  # small integers: many ties
    value = aupro(masks, maps, fpr_limit=limit)
    assert 0.0 <= value <= 1.0
    transformed = np.exp(maps / 2) + maps.astype(float) ** 3 - 7  # strictly increasing on integers
    assert aupro(masks, transformed, fpr_limit=limit) == pytest.approx(value, abs=1e-12)


@FAST
@given(data=small_masks_and_maps)
def test_pro_curve_is_monotone_and_ends_at_one(data: tuple[np.ndarray, np.ndarray]) -> None:
    masks, maps = data
    assume(masks.any() and not masks.all())
    fpr, pro, thresholds = pro_curve(masks, maps)
    assert fpr[0] == pro[0] == 0.0 and thresholds[0] == np.inf
    assert fpr[-1] == 1.0 and pro[-1] == pytest.approx(1.0, abs=1e-12)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(pro) >= 0)
    assert np.all(np.diff(thresholds) < 0)
    assert len(thresholds) == len(np.unique(maps)) + 1


# ---------------------------------------------------------------- errors


ONE_IMAGE = np.zeros((1, 4, 4))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: image_auroc([0, 0, 0], [1, 2, 3]), "both normal"),
        (lambda: image_auroc([1, 1], [1, 2]), "both normal"),
        (lambda: image_auroc([], []), "both normal"),
        (lambda: image_auroc([0, 2], [1, 2]), "binary"),
        (lambda: image_auroc([0, 1, 1], [1, 2]), "differ in length"),
        (lambda: image_auroc([[0, 1]], [[1, 2]]), "1-D"),
        (lambda: image_auroc([0, 1], [1, math.nan]), "finite"),
        (lambda: roc_curve([0, 0], [1, 2]), "both normal"),
        (lambda: f1_max([0, 0], [1, 2]), "at least one anomalous"),
        (lambda: f1_max([0, 1], [math.inf, 2]), "finite"),
        (lambda: pixel_auroc(ONE_IMAGE, ONE_IMAGE), "both normal"),
        (lambda: pixel_auroc(ONE_IMAGE + 1, ONE_IMAGE), "both normal"),
        (lambda: pixel_auroc(np.zeros((2, 4, 4)), np.zeros((2, 4, 5))), "same"),
        (lambda: pixel_auroc(np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 4))), r"\(N, 1, H, W\)"),
        (lambda: pixel_auroc(np.zeros(16), np.zeros(16)), r"\(N, H, W\)"),
        (lambda: pixel_auroc(row(0, 255), row(0, 1)), "binary"),
        (lambda: pixel_auroc(row(0, 1), row(0, math.nan)), "finite"),
        (lambda: aupro(ONE_IMAGE, ONE_IMAGE), "at least one anomalous region"),
        (lambda: aupro(ONE_IMAGE + 1, ONE_IMAGE), "normal"),
        (lambda: aupro(row(0, 1), row(0, 1), fpr_limit=0.0), "fpr_limit"),
        (lambda: aupro(row(0, 1), row(0, 1), fpr_limit=-0.1), "fpr_limit"),
        (lambda: aupro(row(0, 1), row(0, 1), fpr_limit=1.5), "fpr_limit"),
        (lambda: aupro(row(0, 1), row(0, 1), fpr_limit=math.nan), "fpr_limit"),
        (lambda: aupro(row(0, 1), row(0, 1), connectivity=6), "connectivity"),
        (lambda: aupro(row(0, 1), row(0, math.inf)), "finite"),
        (lambda: pro_curve(ONE_IMAGE, ONE_IMAGE), "at least one anomalous region"),
    ],
)
def test_errors(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_vector_statistics_per_class() -> None:
    lengths = np.array([[0.9, 0.2], [0.8, 0.3], [0.7, 0.1], [0.4, 0.6], [0.5, 0.5]])
    decoded = np.array([0, 0, 0, 1, 0])
    stats = vector_statistics(lengths, decoded, np.array([0, 0, 0, 1, 1]))
    assert stats["normal"]["n"] == 3 and stats["anomalous"]["n"] == 2
    assert stats["normal"]["decoded"] == {"vector_1": 3, "vector_2": 0}
    assert stats["anomalous"]["decoded"] == {"vector_1": 1, "vector_2": 1}
    assert stats["normal"]["lengths"]["vector_1"] == pytest.approx(
        {"min": 0.7, "median": 0.8, "max": 0.9, "mean": 0.8}
    )
    only_normal = vector_statistics(lengths[:3], decoded[:3], np.zeros(3, int))
    assert set(only_normal) == {"normal"}


def test_group_statistics_rank_each_defect_type_against_every_normal_image() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.5, 0.9, 0.8, 0.15, 0.3])
    groups = ["good", "good", "good", "crack", "crack", "stain", "stain"]
    rows = group_statistics(labels, scores, groups, threshold=0.4)
    assert [(r["group"], r["label"], r["n"]) for r in rows] == [
        ("good", "normal", 3),
        ("crack", "anomalous", 2),
        ("stain", "anomalous", 2),
    ]
    assert [r["flagged"] for r in rows] == [1, 2, 0]  # scores above 0.4
    assert rows[0]["image_auroc"] is None and rows[1]["image_auroc"] == 1.0
    # stain: 0.15 beats 0.1 only; 0.3 beats 0.1 and 0.2: 3 of the 6 pairs
    assert rows[2]["image_auroc"] == pytest.approx(0.5)
    assert rows[2]["image_auroc"] == pytest.approx(
        skm.roc_auc_score([0, 0, 0, 1, 1], [0.1, 0.2, 0.5, 0.15, 0.3])
    )


def test_group_statistics_split_a_group_with_both_labels_and_need_no_threshold() -> None:
    rows = group_statistics([1, 0, 1], [0.9, 0.1, 0.2], ["a", "a", "b"])
    assert [(r["group"], r["label"], r["n"], r["flagged"]) for r in rows] == [
        ("a", "normal", 1, None),
        ("a", "anomalous", 1, None),
        ("b", "anomalous", 1, None),
    ]
    only_anomalous = group_statistics([1, 1], [0.3, 0.4], ["a", "b"], threshold=0.35)
    assert [r["image_auroc"] for r in only_anomalous] == [None, None]
    with pytest.raises(ValueError, match="2 groups for 3 images"):
        group_statistics([0, 1, 1], [0.1, 0.2, 0.3], ["a", "b"])


# ---------------------------------------------------------------- AUROC intervals


def brute_force_delong(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """DeLong's AUROC and standard error from the full pairwise comparison matrix."""
    anomalous, normal = scores[labels == 1], scores[labels == 0]
    pairs = (anomalous[:, None] > normal[None]) + 0.5 * (anomalous[:, None] == normal[None])
    variance = pairs.mean(1).var(ddof=1) / len(anomalous) + pairs.mean(0).var(ddof=1) / len(normal)
    return float(pairs.mean()), math.sqrt(variance)


def logit_interval(auroc: float, se: float, z: float = 1.959963984540054) -> tuple[float, float]:
    logit, half = math.log(auroc / (1 - auroc)), z * se / (auroc * (1 - auroc))
    return 1 / (1 + math.exp(-(logit - half))), 1 / (1 + math.exp(-(logit + half)))


@pytest.mark.parametrize("seed", range(4))
def test_auroc_interval_is_delongs_from_all_pairs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(20), np.ones(63)].astype(int)
    scores = np.round(rng.normal(size=83) + 1.5 * labels, 1)  # rounded: many ties
    auroc, se = brute_force_delong(labels, scores)
    assert auroc == pytest.approx(image_auroc(labels, scores), abs=1e-12)
    assert image_auroc_interval(labels, scores) == pytest.approx(
        logit_interval(auroc, se), abs=1e-12
    )
    low, high = image_auroc_interval(labels, scores, level=0.5)
    assert logit_interval(auroc, se, z=0.6744897501960817) == pytest.approx((low, high), abs=1e-12)


def test_auroc_interval_covers_the_true_auroc_as_often_as_it_says() -> None:
    """400 test sets of bottle's size from a binormal model whose AUROC is Φ(2.2 / √2) = 0.94."""
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(20), np.ones(63)].astype(int)
    true = 0.5 * (1 + math.erf(2.2 / 2))
    covered = [
        low <= true <= high
        for low, high in (
            image_auroc_interval(labels, rng.normal(size=83) + 2.2 * labels) for _ in range(400)
        )
    ]
    assert 0.91 <= np.mean(covered) <= 0.98


def test_auroc_interval_edge_cases() -> None:
    assert image_auroc_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == (1.0, 1.0)
    assert image_auroc_interval([0, 0, 1, 1], [0.8, 0.9, 0.1, 0.2]) == (0.0, 0.0)
    with pytest.raises(ValueError, match="at least two normal and two anomalous"):
        image_auroc_interval([0, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="level must lie in"):
        image_auroc_interval([0, 0, 1, 1], [0.1, 0.3, 0.2, 0.9], level=95)


def test_auroc_interval_from_counts_is_hanley_and_mcneils() -> None:
    # Hanley & McNeil (1982), A = 0.9 with 50 normal and 50 anomalous images:
    # Q1 = 0.9 / 1.1, Q2 = 1.62 / 1.9, SE = sqrt((0.09 + 49 (Q1 - 0.81) + 49 (Q2 - 0.81)) / 2500)
    se = math.sqrt((0.09 + 49 * (0.9 / 1.1 - 0.81) + 49 * (1.62 / 1.9 - 0.81)) / 2500)
    assert se == pytest.approx(0.0321, abs=5e-5)
    assert auroc_interval_from_counts(0.9, 50, 50) == pytest.approx(logit_interval(0.9, se))
    assert auroc_interval_from_counts(1.0, 14, 14) == (1.0, 1.0)
    # close to DeLong's on a large binormal test set
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(400), np.ones(400)].astype(int)
    scores = rng.normal(size=800) + 1.8 * labels
    from_scores = image_auroc_interval(labels, scores)
    from_counts = auroc_interval_from_counts(image_auroc(labels, scores), 400, 400)
    assert from_counts == pytest.approx(from_scores, abs=0.005)
    with pytest.raises(ValueError, match="lies in"):
        auroc_interval_from_counts(1.2, 10, 10)
