"""Which image score ranks defects best? Every score kind of one trained model, on one test set.

One forward pass per test image gives the loss terms and the anomaly residuals; every score of
``piade.config.SCORE_KINDS`` is computed from them (the paper's total loss, the same with each
term divided by its mean on held-out normal images, the maximum and top-1 % mean of the smoothed
anomaly map, the top-1 % mean of the smoothed ImageNet-feature residual) and ranked by image
AUROC against the labels, and so is each of the paper's three loss terms alone and each
instantiation vector's length. The scores need no retraining: they differ only after the
network.

It also asks how much of the paper's score is the image's own complexity rather than its
anomaly: each image's high-frequency energy (the mean squared difference between the image and
its Gaussian blur of sigma = 1 pixel, at the model's input size) is ranked as a score on its own,
its Spearman correlation with the paper's score is printed, and so is the AUROC of the paper's
score corrected for it, log(loss) - beta * log(complexity), with beta the least-squares slope of
log(loss) on log(complexity) over the normal *training* images (no test label is used). Prints
one JSON line, then a table.

And it asks how much the reconstruction owes to the decoded instantiation vector at all, since
the decoder also receives the encoder's features through the skip connection (Sec. 3.1): the
paper's score of every training and test image is recomputed with the decoded vector replaced by
zeros, with each vector decoded in turn, and with a per-vector rule that decodes the vector
longest relative to its own 90th percentile length on the training images (Sec. 6 expects
vector 2 to grow on anomalies, but trained only through the couplings it stays shorter than
vector 1)::

    python benchmarks/image_scores.py runs/bottle --data mvtec --root ../shared/data/mvtec_ad \\
        --category bottle

And it scores the images as the authors' released code weighs the paper's three terms
(``authors_weighting``): their images are in [0, 1] rather than [-1, 1] (the MSE term is a
quarter of ours) and their perceptual network receives them without ImageNet normalisation (a
much smaller term); the same model, reconstruction and feature network. On MVTec AD it also
gives every score's AUROC on the 15 normal and 15 anomalous test images the authors' evaluation
script scored (``piade.benchmark.authors``).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from scipy.stats import spearmanr
from torchvision.transforms.functional import gaussian_blur

from piade.benchmark.authors import authors_subset
from piade.cli.args import datasets, parse_args
from piade.config import SCORE_KINDS
from piade.data.dataset import stack_images
from piade.inference.detector import Detector, load, score_dataset
from piade.losses import ReconstructionLoss
from piade.metrics import image_auroc
from piade.model.network import ModelOutput
from piade.preprocess import to_signed


def complexity(images: torch.Tensor) -> np.ndarray:
    """Each image's high-frequency energy: mean of (image - its Gaussian blur, sigma 1 px)^2.

    ``images``: uint8 or [0, 1] float (N, C, H, W).
    """
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    return ((x - gaussian_blur(x, kernel_size=5, sigma=1.0)) ** 2).mean(dim=(1, 2, 3)).numpy()


def complexity_corrected(
    train_loss: np.ndarray,
    train_complexity: np.ndarray,
    test_loss: np.ndarray,
    test_complexity: np.ndarray,
) -> tuple[np.ndarray, float]:
    """log(loss) - beta * log(complexity), beta fitted on normal training images; and beta."""
    beta = float(np.polyfit(np.log(train_complexity), np.log(train_loss), 1)[0])
    return np.log(test_loss) - beta * np.log(test_complexity), beta


def vector_use(detector: Detector, images: torch.Tensor, batch_size: int) -> dict[str, np.ndarray]:
    """Per image (uint8, N x 3 x H x W): each vector's length (N, J), the total loss and the MSE
    with each vector decoded (``loss:vJ``, ``mse:vJ``) and with the decoded vector set to zero
    (``loss:zero``, ``mse:zero``, vector 1 decoded)."""
    model, criterion = detector.model.eval(), detector.criterion

    def decode(x: torch.Tensor, index: int, *, zeroed: bool = False) -> ModelOutput:
        hook = model.upsampling.register_forward_pre_hook(
            lambda module, inputs: (torch.zeros_like(inputs[0]),)
        ) if zeroed else None  # fmt: skip
        try:
            return model(x, vector_index=index)
        finally:
            if hook is not None:
                hook.remove()

    found: dict[str, list[torch.Tensor]] = {}
    passes = [(f"v{j + 1}", j, False) for j in range(detector.config.num_vectors)]
    with torch.no_grad():
        for batch in images.split(batch_size):
            x = batch.to(detector.device).float() / 255
            for name, index, zeroed in [*passes, ("zero", 0, True)]:
                output = decode(x, index, zeroed=zeroed)
                terms = criterion.terms(criterion.residuals(to_signed(x), output.reconstruction))
                found.setdefault(f"loss:{name}", []).append(terms.total.cpu())
                found.setdefault(f"mse:{name}", []).append(terms.mse.cpu())
            found.setdefault("lengths", []).append(output.lengths.cpu())  # the same in every pass
    return {k: torch.cat(v).double().numpy() for k, v in found.items()}


def authors_weighting(detector: Detector, images: torch.Tensor, batch_size: int) -> np.ndarray:
    """The paper's score of each image (uint8, N x 3 x H x W) in the units of the authors' code
    (``ReconstructionLoss(convention="authors")``: MSE of [0, 1] images, the perceptual network
    fed them unnormalised, 1 - SSIM), whatever units the model was trained in."""
    model = detector.model.eval()
    criterion = ReconstructionLoss(detector.criterion.perceptual_net, convention="authors")
    found = []
    with torch.no_grad():
        for batch in images.split(batch_size):
            x = batch.to(detector.device).float() / 255
            found.append(criterion(to_signed(x), model(x).reconstruction.float()).total.cpu())
    return torch.cat(found).double().numpy()


def vector_report(
    train: dict[str, np.ndarray], test: dict[str, np.ndarray], labels: np.ndarray
) -> dict[str, object]:
    """AUROC of the paper's score under each decoding, and the training images' mean loss."""
    report: dict[str, object] = {}
    names = [k.split(":")[1] for k in test if k.startswith("loss:")]
    for name in names:
        report[name] = {
            "auroc": image_auroc(labels, test[f"loss:{name}"]),
            "train_loss": float(train[f"loss:{name}"].mean()),
            "train_mse": float(train[f"mse:{name}"].mean()),
        }
    lengths = test["lengths"]
    if lengths.shape[1] > 1:  # decode the vector longest relative to its usual length
        usual = np.quantile(train["lengths"], 0.9, axis=0)  # (J,)
        pick = (lengths / usual).argmax(axis=1)
        losses = np.stack([test[f"loss:v{j + 1}"] for j in range(lengths.shape[1])], axis=1)
        report["relative"] = {
            "auroc": image_auroc(labels, losses[np.arange(len(pick)), pick]),
            "not_v1_normal": int((pick[labels == 0] != 0).sum()),
            "not_v1_anomalous": int((pick[labels == 1] != 0).sum()),
        }
    return report


def score_all(model_path: str, fit_flags: list[str], batch_size: int) -> dict[str, object]:
    """AUROC of every score kind for the model at ``model_path`` on the test split of the data."""
    detector = load(model_path)
    args = parse_args(["fit", *fit_flags, "--out", "unused"])
    crop = detector.config.center_crop  # the model's own: it saw only the central part
    train, test = datasets(args, image_size=detector.image_size, center_crop=crop)
    labels = np.asarray(test.labels).astype(int)
    scored = score_dataset(detector, test, batch_size=batch_size, keep=("every_score",))
    loss, test_c = scored["score:loss"], complexity(stack_images(test))
    train_scored = score_dataset(detector, train, batch_size=batch_size, keep=("every_score",))
    corrected, beta = complexity_corrected(
        train_scored["score:loss"], complexity(stack_images(train)), loss, test_c
    )
    vectors = vector_report(
        vector_use(detector, stack_images(train), batch_size),
        vector_use(detector, stack_images(test), batch_size),
        labels,
    )
    cal = detector.calibration
    scores = {kind: scored[f"score:{kind}"] for kind in SCORE_KINDS}
    aurocs = {kind: image_auroc(labels, v) for kind, v in scores.items()}
    terms = {
        "mse": scored["mse"],
        "perceptual": scored["perceptual"],
        "1 - ssim": 1 - scored["ssim"],
    }
    lengths = np.asarray(scored["lengths"])  # (N, num_vectors)
    for j in range(lengths.shape[1]):  # is a vector's length itself a score? (Sec. 6's mechanism)
        terms[f"|v{j + 1}|"] = lengths[:, j]
    authors = authors_weighting(detector, stack_images(test), batch_size)
    subset = authors_subset(args.data, test.samples)
    on_subset = {}
    if subset is not None:
        pick = np.asarray(subset)
        on_subset = {k: image_auroc(labels[pick], v[pick]) for k, v in scores.items()}
        on_subset["authors' weighting"] = image_auroc(labels[pick], authors[pick])
    return {
        "model": model_path,
        "data": " ".join(fit_flags),
        "map_kind": cal.map_kind,
        "n_normal": int((labels == 0).sum()),
        "n_anomalous": int(labels.sum()),
        "image_auroc": aurocs,
        "term_auroc": {name: image_auroc(labels, v) for name, v in terms.items()},
        "complexity": {
            "auroc": image_auroc(labels, test_c),
            "spearman_with_loss": float(spearmanr(loss, test_c).statistic),
            "beta": beta,
            "corrected_loss_auroc": image_auroc(labels, corrected),
        },
        "vectors": vectors,
        "authors_weighting_auroc": image_auroc(labels, authors),
        "authors_subset_auroc": on_subset,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model", help="model file or piade fit output directory")
    parser.add_argument("--batch-size", type=int, default=32)
    args, data_flags = parser.parse_known_args()
    result = score_all(args.model, data_flags, args.batch_size)
    print(json.dumps(result))
    print(f"\n{result['n_normal']} normal, {result['n_anomalous']} anomalous test images")
    for kind, value in result["image_auroc"].items():  # type: ignore[attr-defined]
        print(f"{kind:<16} image AUROC {value:.4f}")
    print("each term of the paper's loss alone, and each vector's length:")
    for name, value in result["term_auroc"].items():  # type: ignore[attr-defined]
        print(f"  {name:<14} image AUROC {value:.4f}")
    c = result["complexity"]
    print(
        f"image complexity alone: image AUROC {c['auroc']:.4f}, Spearman with the paper's score "
        f"{c['spearman_with_loss']:.3f}; the paper's score corrected for it (beta {c['beta']:.2f}, "
        f"fitted on the training images): image AUROC {c['corrected_loss_auroc']:.4f}"
    )
    print(
        "the paper's score with its terms weighed as the authors' code does: image AUROC "
        f"{result['authors_weighting_auroc']:.4f}"
    )
    if result["authors_subset_auroc"]:
        print("on the authors' evaluation subset (15 normal, 15 anomalous test images):")
        for kind, value in result["authors_subset_auroc"].items():  # type: ignore[attr-defined]
            print(f"  {kind:<18} image AUROC {value:.4f}")
    print("the paper's score by the vector decoded (training images' mean loss and MSE):")
    for name, v in result["vectors"].items():  # type: ignore[attr-defined]
        if name == "relative":
            print(
                f"  {'relative':<8} image AUROC {v['auroc']:.4f} (another vector than v1 decoded "
                f"for {v['not_v1_normal']} normal, {v['not_v1_anomalous']} anomalous images)"
            )
        else:
            print(
                f"  {name:<8} image AUROC {v['auroc']:.4f}; training loss {v['train_loss']:.4f}, "
                f"MSE {v['train_mse']:.5f}"
            )


if __name__ == "__main__":
    main()
