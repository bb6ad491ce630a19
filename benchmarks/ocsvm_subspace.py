"""Why the OC-SVM baseline ranks some COIL objects upside down: what its PCA features keep.

The ``ocsvm`` baseline (:mod:`piade.baselines.shallow`) sees each image only through its
coordinates in the PCA subspace of the normal object's training images. An image of another object
is mostly *outside* that subspace; its projection keeps only the small part inside, which lands
near the training mean, where a one-class SVM's support is densest. For each COIL object this
prints the image AUROC of the OC-SVM's score beside three distances computed from the same fit:
the distance to the mean inside the subspace (all the SVM sees), the residual outside it, and the
plain pixel distance to the training mean. Test labels are used only to compute the AUROCs::

    python benchmarks/ocsvm_subspace.py --root ../shared/data/coil20 --objects 2,5,10,12 --image-size 64
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from piade.baselines.shallow import OcsvmBaseline, pixel_features
from piade.data import build_datasets
from piade.metrics import image_auroc


def measure(root: str, obj: int, image_size: int, seed: int) -> dict[str, float | int]:
    """AUROCs of the OC-SVM score and of three distances for COIL object ``obj``."""
    train, test = build_datasets("coil100", root, obj, image_size=image_size, seed=seed)
    labels = np.asarray(test.labels)
    model = OcsvmBaseline(image_size=image_size, seed=seed)
    model.fit(train.images)
    x_train, x_test = pixel_features(train.images), pixel_features(test.images)
    pca, k = model.features.pca, model.features.n_components
    assert pca is not None
    z = model.features.transform(x_test)  # (N, k), what the SVM sees
    padded = np.pad(z, ((0, 0), (0, pca.n_components_ - k)))
    outside = np.linalg.norm(x_test - pca.inverse_transform(padded), axis=1)
    inside = np.linalg.norm(z, axis=1)  # PCA coordinates are centred on the training mean
    return {
        "object": obj,
        "components": k,
        "ocsvm": image_auroc(labels, model.score(test.images).scores),
        "inside_distance": image_auroc(labels, inside),
        "outside_residual": image_auroc(labels, outside),
        "pixel_distance": image_auroc(labels, np.linalg.norm(x_test - x_train.mean(0), axis=1)),
        "inside_normal_mean": float(inside[labels == 0].mean()),
        "inside_anomalous_mean": float(inside[labels == 1].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="COIL-20 or COIL-100 folder")
    parser.add_argument("--objects", default="1,2", help="comma list of object ids")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [
        measure(args.root, int(obj), args.image_size, args.seed) for obj in args.objects.split(",")
    ]
    print("image AUROC of each score (the OC-SVM sees only the inside coordinates)")
    print(f"{'object':>6} {'k':>4} {'ocsvm':>6} {'inside':>7} {'outside':>8} {'pixel':>6}")
    for r in rows:
        print(
            f"{r['object']:>6} {r['components']:>4} {r['ocsvm']:6.3f} {r['inside_distance']:7.3f}"
            f" {r['outside_residual']:8.3f} {r['pixel_distance']:6.3f}"
        )
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
