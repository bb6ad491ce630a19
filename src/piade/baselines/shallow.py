"""Shallow baselines on PCA-reduced pixels: a one-class SVM and a Gaussian kernel density estimate.

These are the OC-SVM and KDE columns of the paper's Table 2, which quotes them from Abati et al.,
"Latent Space Autoregression for Novelty Detection", CVPR 2019. Nothing here looks at test labels;
every hyper-parameter is fixed or chosen from the training (normal) images alone.

Features: each image as float in [0, 1], flattened over all three channels (3·S·S values), centred
by the training mean of every feature (PCA's own centring; no per-feature scaling, since all pixels
share one scale), then projected by a PCA fitted on the training images only.

* **Number of components:** the smallest k explaining 95 % of the training variance, capped at
  ``min(n_train - 1, 256)`` — n_train − 1 because centred training data span at most that many
  directions, 256 to keep the density models' dimension modest (the usual PCA-then-shallow recipe
  keeps a few hundred components at most).
* **Solver:** LAPACK's exact SVD when the data matrix is small (≤ 1000 on its short side),
  otherwise scikit-learn's randomized SVD with ``random_state=seed``, which computes just the
  capped number of components; both are deterministic.
* **OC-SVM:** RBF kernel on the (unwhitened) components, ``nu = 0.1`` (at most ~10 % of the training
  images are treated as margin errors, a common default for clean normal data) and gamma by
  scikit-learn's ``"scale"`` rule, ``1 / (k · Var(features))``, which makes the kernel width match
  the spread of the training features. Image score = ``-decision_function`` (higher = outside).
* **KDE:** Gaussian kernel on *whitened* components (every component unit variance, so one
  bandwidth suits all); the bandwidth maximises the held-out log-likelihood of the training images
  under shuffled k-fold cross-validation (5 folds, fewer with fewer than 5 images) over 10 values
  log-spaced from 0.1 to 10 — the likelihood-optimal bandwidth for whitened data is about a
  nearest-neighbour distance divided by √k, i.e. of order 1. The search computes exactly what
  ``GridSearchCV(KernelDensity(...))`` would, with one distance matrix per fold for all bandwidths.
  Image score = ``-score_samples`` of :class:`sklearn.neighbors.KernelDensity` (negative log
  density), built with one leaf holding every training point: its tree pruning returned log
  densities hundreds of nats too high for some points of whitened 256-D features (scikit-learn
  1.9; compare issue #25799), while a single leaf is an exact brute-force sum.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold
from sklearn.neighbors import KernelDensity
from sklearn.svm import OneClassSVM

from piade.baselines.base import BaselineScores, check_images

log = logging.getLogger(__name__)

EXPLAINED_VARIANCE = 0.95  # share of training variance the kept components must explain
MAX_COMPONENTS = 256  # upper bound on k, whatever the variance
EXACT_SVD_LIMIT = 1000  # exact SVD when min(n_train, n_features) is at most this
OCSVM_NU = 0.1  # upper bound on the fraction of training margin errors
KDE_BANDWIDTHS = np.logspace(-1, 1, 10)  # candidate bandwidths for whitened components
KDE_FOLDS = 5  # cross-validation folds for the bandwidth (fewer if fewer images)
QUERY_CHUNK = 512  # held-out points per distance block in the bandwidth search


def pixel_features(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, 3, S, S) → float64 (N, 3·S·S) in [0, 1]."""
    return images.detach().cpu().reshape(images.shape[0], -1).numpy().astype(np.float64) / 255.0


class PcaFeatures:
    """PCA of flattened pixels keeping the components that explain 95 % of the training variance."""

    def __init__(self, *, whiten: bool, seed: int) -> None:
        self.whiten, self.seed = whiten, seed
        self.pca: PCA | None = None
        self.n_components = 0

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        """Fit on training features x (N, D) and return their projections (N, k)."""
        n, d = x.shape
        cap = min(n - 1, d, MAX_COMPONENTS)
        solver = "full" if min(n, d) <= EXACT_SVD_LIMIT else "randomized"
        self.pca = PCA(n_components=cap, svd_solver=solver, random_state=self.seed)
        z = self.pca.fit_transform(x)  # (N, cap)
        cumulative = np.cumsum(self.pca.explained_variance_ratio_)
        self.n_components = min(int(np.searchsorted(cumulative, EXPLAINED_VARIANCE)) + 1, cap)
        return self._finish(z)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project features x (N, D) onto the kept components (N, k)."""
        if self.pca is None:
            raise RuntimeError("call fit() before score()")
        return self._finish(self.pca.transform(x))

    def _finish(self, z: np.ndarray) -> np.ndarray:
        assert self.pca is not None
        z = z[:, : self.n_components]  # (N, k)
        if self.whiten:
            variance = self.pca.explained_variance_[: self.n_components]
            z = z / np.sqrt(np.maximum(variance, np.finfo(np.float64).tiny))
        return z

    def describe(self) -> dict[str, Any]:
        """What was fitted, for the fit() report."""
        assert self.pca is not None
        ratio = self.pca.explained_variance_ratio_[: self.n_components]
        return {
            "n_components": self.n_components,
            "explained_variance": float(ratio.sum()),
            "pca_solver": str(self.pca.svd_solver),
            "whiten": self.whiten,
        }


def heldout_log_likelihood(
    z: np.ndarray, bandwidths: np.ndarray, *, folds: int, seed: int
) -> np.ndarray:
    """Mean over shuffled k folds of the held-out total log-likelihood, one value per bandwidth.

    The same numbers as ``GridSearchCV(KernelDensity(kernel="gaussian"), {"bandwidth": ...},
    cv=KFold(folds, shuffle=True, random_state=seed))`` computes as its mean test score, but each
    fold's pairwise distances are computed once for all bandwidths (the grid search took 86 s on
    5000 CIFAR-sized images; this takes about 3 s).
    """
    k = z.shape[1]
    totals = np.zeros(len(bandwidths))
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(z):
        reference = z[train]  # (n_train, k)
        ref_sq = (reference * reference).sum(axis=1)
        for start in range(0, len(test), QUERY_CHUNK):
            query = z[test[start : start + QUERY_CHUNK]]  # (m, k)
            d2 = (query * query).sum(axis=1)[:, None] + ref_sq[None] - 2 * query @ reference.T
            d2 = np.maximum(d2, 0.0)  # (m, n_train) squared distances
            for i, h in enumerate(bandwidths):
                log_kernel = logsumexp(-d2 / (2 * h * h), axis=1)  # (m,)
                norm = np.log(len(train)) + 0.5 * k * np.log(2 * np.pi * h * h)
                totals[i] += float((log_kernel - norm).sum())
    return totals / folds


class OcsvmBaseline:
    """One-class SVM (RBF kernel, ν = 0.1, γ by the "scale" rule) on PCA features."""

    name = "ocsvm"

    def __init__(self, *, image_size: int, seed: int = 0, nu: float = OCSVM_NU) -> None:
        self.image_size, self.seed, self.nu = image_size, seed, nu
        self.features = PcaFeatures(whiten=False, seed=seed)
        self.svm: OneClassSVM | None = None

    def fit(self, images: torch.Tensor) -> dict[str, Any]:
        """Fit PCA and the SVM on normal uint8 (N, 3, S, S) images (N ≥ 2)."""
        check_images(images, self.image_size, min_count=2)
        z = self.features.fit_transform(pixel_features(images))  # (N, k)
        variance = float(z.var())
        gamma = 1.0 / (z.shape[1] * variance) if variance > 0 else 1.0  # sklearn's "scale"
        self.svm = OneClassSVM(kernel="rbf", nu=self.nu, gamma=gamma).fit(z)
        info = {"method": self.name, "n_train": int(z.shape[0]), **self.features.describe()}
        info |= {"kernel": "rbf", "nu": self.nu, "gamma": gamma, "seed": self.seed}
        log.info("ocsvm: %d components, gamma %.4g", self.features.n_components, gamma)
        return info

    def score(self, images: torch.Tensor) -> BaselineScores:
        """Image scores ``-decision_function`` (N,); no maps."""
        check_images(images, self.image_size)
        if self.svm is None:
            raise RuntimeError("call fit() before score()")
        z = self.features.transform(pixel_features(images))
        return BaselineScores(-self.svm.decision_function(z).astype(np.float64), None)


class KdeBaseline:
    """Gaussian kernel density on whitened PCA features, bandwidth by cross-validated likelihood."""

    name = "kde"

    def __init__(self, *, image_size: int, seed: int = 0) -> None:
        self.image_size, self.seed = image_size, seed
        self.features = PcaFeatures(whiten=True, seed=seed)
        self.kde: KernelDensity | None = None

    def fit(self, images: torch.Tensor) -> dict[str, Any]:
        """Fit PCA and the density on normal uint8 (N, 3, S, S) images (N ≥ 2)."""
        check_images(images, self.image_size, min_count=2)
        z = self.features.fit_transform(pixel_features(images))  # (N, k)
        folds = min(KDE_FOLDS, z.shape[0])
        likelihood = heldout_log_likelihood(z, KDE_BANDWIDTHS, folds=folds, seed=self.seed)
        bandwidth = float(KDE_BANDWIDTHS[int(np.argmax(likelihood))])
        if bandwidth in (KDE_BANDWIDTHS[0], KDE_BANDWIDTHS[-1]):
            log.warning("kde: the chosen bandwidth %.3g is at the edge of the grid", bandwidth)
        # One leaf = exact brute force (the tree's pruning is wrong in high dimensions, see above).
        self.kde = KernelDensity(kernel="gaussian", bandwidth=bandwidth, leaf_size=len(z)).fit(z)
        info = {"method": self.name, "n_train": int(z.shape[0]), **self.features.describe()}
        info |= {
            "kernel": "gaussian",
            "bandwidth": bandwidth,
            "bandwidth_grid": [float(b) for b in KDE_BANDWIDTHS],
            "cv_folds": folds,
            "seed": self.seed,
        }
        log.info("kde: %d components, bandwidth %.4g", self.features.n_components, bandwidth)
        return info

    def score(self, images: torch.Tensor) -> BaselineScores:
        """Image scores ``-score_samples`` (negative log density, N,); no maps."""
        check_images(images, self.image_size)
        if self.kde is None:
            raise RuntimeError("call fit() before score()")
        z = self.features.transform(pixel_features(images))
        return BaselineScores(-self.kde.score_samples(z).astype(np.float64), None)
