"""Baselines (OC-SVM, KDE, AE-L2, AE-SSIM) on easy synthetic anomalies at 32 px, and the factory."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KernelDensity

from piade.baselines import BASELINES, Baseline, BaselineScores, build_baseline
from piade.baselines.autoencoder import BergmannAutoencoder
from piade.baselines.shallow import (
    KDE_BANDWIDTHS,
    KdeBaseline,
    heldout_log_likelihood,
    pixel_features,
)
from piade.errors import ConfigError, DataError
from piade.metrics import image_auroc

SIZE = 32
N_TRAIN, N_TEST = 40, 20  # normal training images; test images per class
DEFECT = 8  # side of the bright square on anomalous images
AE_OPTIONS = {"epochs": 12, "batch_size": 8}  # ~60 steps: enough to reconstruct the smooth images
AUTOENCODERS = ("ae-l2", "ae-ssim")

Fitted = tuple[dict[str, Any], BaselineScores]


@dataclass(frozen=True)
class Synthetic:
    """train: (N_TRAIN, 3, S, S) normal; test: normal then anomalous; boxes: (y, x) per defect."""

    train: torch.Tensor
    test: torch.Tensor
    labels: np.ndarray
    boxes: list[tuple[int, int]]


def _images(
    n: int, rng: np.random.Generator, *, defect: bool
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Smooth images (a tilted colour ramp plus a soft blob, a little noise), optionally a square."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)  # (S, S) each
    images = np.empty((n, 3, SIZE, SIZE))
    boxes: list[tuple[int, int]] = []
    for i in range(n):
        angle = rng.uniform(0, 0.5)
        colour = np.array([0.35, 0.4, 0.45]) + rng.uniform(-0.03, 0.03, size=3)
        cy, cx = rng.uniform(0.4, 0.6, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 0.15**2))
        ramp = np.cos(angle) * xx + np.sin(angle) * yy
        images[i] = (
            colour[:, None, None] + 0.2 * ramp + 0.2 * blob + rng.normal(0, 0.01, (3, SIZE, SIZE))
        )
        if defect:
            y, x = (int(v) for v in rng.integers(2, SIZE - DEFECT - 2, size=2))
            images[i, :, y : y + DEFECT, x : x + DEFECT] = 1.0
            boxes.append((y, x))
    pixels = np.clip(images * 255, 0, 255).round().astype(np.uint8)
    return torch.from_numpy(pixels), boxes


@pytest.fixture(scope="module")
def data() -> Synthetic:
    rng = np.random.default_rng(0)
    train, _ = _images(N_TRAIN, rng, defect=False)
    normal, _ = _images(N_TEST, rng, defect=False)
    anomalous, boxes = _images(N_TEST, rng, defect=True)
    labels = np.r_[np.zeros(N_TEST), np.ones(N_TEST)]
    return Synthetic(train, torch.cat([normal, anomalous]), labels, boxes)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread: the autoencoders' timing stays stable on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fit_and_score(name: str, data: Synthetic, seed: int = 0) -> Fitted:
    baseline = build_baseline(name, image_size=SIZE, seed=seed, **AE_OPTIONS)
    return baseline.fit(data.train), baseline.score(data.test)


@pytest.fixture(scope="module")
def fitted(data: Synthetic) -> Callable[[str], Fitted]:
    """Fit each baseline once per module (seed 0) and keep its report and test scores."""
    cache: dict[str, Fitted] = {}

    def get(name: str) -> Fitted:
        if name not in cache:
            cache[name] = _fit_and_score(name, data)
        return cache[name]

    return get


@pytest.mark.parametrize("name", BASELINES)
def test_detects_synthetic_defects(
    name: str, data: Synthetic, fitted: Callable[[str], Fitted]
) -> None:
    _, result = fitted(name)
    assert result.scores.shape == (2 * N_TEST,) and result.scores.dtype == np.float64
    assert np.all(np.isfinite(result.scores))
    assert image_auroc(data.labels, result.scores) >= 0.9
    if name in AUTOENCODERS:
        assert result.maps is not None
        assert result.maps.shape == (2 * N_TEST, SIZE, SIZE) and result.maps.dtype == np.float32
        np.testing.assert_allclose(result.scores, result.maps.reshape(2 * N_TEST, -1).max(axis=1))
    else:
        assert result.maps is None


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_map_is_higher_on_the_defect(
    name: str, data: Synthetic, fitted: Callable[[str], Fitted]
) -> None:
    _, result = fitted(name)
    assert result.maps is not None
    for i, (y, x) in enumerate(data.boxes):
        anomaly_map = result.maps[N_TEST + i]
        inside = np.zeros(anomaly_map.shape, dtype=bool)
        inside[y : y + DEFECT, x : x + DEFECT] = True
        assert anomaly_map[inside].mean() > 2 * anomaly_map[~inside].mean()


@pytest.mark.parametrize("name", BASELINES)
def test_same_seed_same_scores(name: str, data: Synthetic, fitted: Callable[[str], Fitted]) -> None:
    info, result = fitted(name)
    again_info, again = _fit_and_score(name, data, seed=0)
    np.testing.assert_array_equal(again.scores, result.scores)
    assert again_info == info


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("ocsvm", {"n_components", "explained_variance", "nu", "gamma", "seed"}),
        ("kde", {"n_components", "bandwidth", "cv_folds", "seed"}),
        ("ae-l2", {"latent_dim", "epochs", "batch_size", "lr", "final_loss", "seed"}),
        ("ae-ssim", {"latent_dim", "epochs", "ssim_window", "final_loss", "seed"}),
    ],
)
def test_fit_report(name: str, keys: set[str], fitted: Callable[[str], Fitted]) -> None:
    info, _ = fitted(name)
    assert json.loads(json.dumps(info)) == info
    assert keys <= info.keys() and info["method"] == name and info["n_train"] == N_TRAIN
    if name in AUTOENCODERS:
        assert info["latent_dim"] == 100 and info["epochs"] == AE_OPTIONS["epochs"]
        assert 0 <= float(info["final_loss"]) < 1
    else:
        assert 1 <= int(info["n_components"]) <= N_TRAIN - 1
        assert float(info["explained_variance"]) >= 0.95
    if name == "kde":
        assert info["bandwidth"] in KDE_BANDWIDTHS and info["cv_folds"] == 5


@pytest.mark.parametrize("name", BASELINES)
def test_built_baselines_follow_the_protocol(name: str) -> None:
    baseline = build_baseline(name, image_size=SIZE)
    assert isinstance(baseline, Baseline) and baseline.name == name


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="ocsvm, kde, ae-l2, ae-ssim"):
        build_baseline("pca", image_size=SIZE)


@pytest.mark.parametrize("size", [40, 16, 8])
def test_autoencoder_rejects_sizes_it_cannot_take(size: int) -> None:
    for name in AUTOENCODERS:
        with pytest.raises(ConfigError, match=r"multiple of 16 from 32"):
            build_baseline(name, image_size=size)
    build_baseline("ocsvm", image_size=size)  # the shallow baselines take any size


def test_wrong_images_and_order_are_reported(data: Synthetic) -> None:
    baseline = build_baseline("ocsvm", image_size=SIZE)
    with pytest.raises(RuntimeError, match="fit"):
        baseline.score(data.test)
    with pytest.raises(DataError, match=r"\(N, 3, 32, 32\)"):
        baseline.fit(torch.zeros(4, 3, 40, 40, dtype=torch.uint8))
    with pytest.raises(DataError, match="uint8"):
        baseline.fit(data.train.float())


def test_bandwidth_search_matches_grid_search() -> None:
    z = np.random.default_rng(1).normal(size=(53, 6))
    ours = heldout_log_likelihood(z, KDE_BANDWIDTHS, folds=5, seed=3)
    search = GridSearchCV(
        KernelDensity(kernel="gaussian"),
        {"bandwidth": KDE_BANDWIDTHS},
        cv=KFold(n_splits=5, shuffle=True, random_state=3),
    ).fit(z)
    np.testing.assert_allclose(ours, search.cv_results_["mean_test_score"], rtol=1e-9)


def test_kde_scores_are_exact_log_densities(data: Synthetic) -> None:
    """A brute-force check; with 120 images scikit-learn's default tree was off by ~66 nats."""
    n_train = 120
    train, _ = _images(n_train, np.random.default_rng(5), defect=False)
    kde = KdeBaseline(image_size=SIZE)
    bandwidth = float(kde.fit(train)["bandwidth"])
    reference = kde.features.transform(pixel_features(train))  # (n_train, k)
    query = kde.features.transform(pixel_features(data.test))  # (2 N_TEST, k)
    d2 = ((query[:, None] - reference[None]) ** 2).sum(axis=-1)  # (2 N_TEST, n_train)
    k = reference.shape[1]
    log_density = (
        logsumexp(-d2 / (2 * bandwidth**2), axis=1)
        - np.log(n_train)
        - 0.5 * k * np.log(2 * np.pi * bandwidth**2)
    )
    np.testing.assert_allclose(kde.score(data.test).scores, -log_density, rtol=1e-9)


def test_autoencoder_at_128_px_has_a_1x1x100_latent() -> None:
    model = BergmannAutoencoder(128)
    with torch.no_grad():
        out = model(torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)))
    assert out.reconstruction.shape == (2, 3, 128, 128)
    assert out.latent.shape == (2, 100, 1, 1)
    assert 0 <= float(out.reconstruction.min()) and float(out.reconstruction.max()) <= 1


def test_every_autoencoder_parameter_gets_a_gradient() -> None:
    model = BergmannAutoencoder(SIZE)
    out = model(torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)))
    assert out.reconstruction.shape == (1, 3, SIZE, SIZE) and out.latent.shape == (1, 100, 1, 1)
    out.reconstruction.sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
