"""The demo data set: a real photograph shipped with scikit-image, with synthetic defects.

Visual inspection in miniature: every normal image is scikit-image's ``coffee`` photograph (a cup
on a saucer) as a camera on an inspection line would see it — shifted by a few pixels, slightly
brighter or darker, with sensor noise. Defective images get one of three pasted defects — a patch
of another real photograph (``gravel``), a scratch, or a coloured stain — and an exact mask.
The tree is written in the MVTec AD layout, so the demo exercises the same reader, training,
evaluation and report as a user's data. Beside it, a small labelled validation set (good images and
defects of every kind, never the test images) in the layout of a folder data set sets the decision
threshold, as an inspection line with a few known defective parts would: 16 held-out normal images
are too few for the 0.99 quantile to mean what it says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from piade.errors import PiadeError

CATEGORY = "cup"
VALIDATION = "validation"  # labelled images that set the threshold, beside the category folder
DEFECTS = ("patch", "scratch", "stain")
VIEW = (20, 110, 380, 470)  # rows and columns of the coffee photograph around the cup
JITTER = 8  # px of random shift of the view


def _photographs() -> tuple[np.ndarray, np.ndarray]:
    try:
        from skimage import data
    except ImportError as error:
        raise PiadeError(
            "the demo needs scikit-image's bundled photographs: pip install 'piade[demo]'"
        ) from error
    return data.coffee(), data.gravel()


def _view(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """One normal image: the cup, shifted, with brightness change and noise, ``size`` px."""
    top, left, bottom, right = VIEW
    dy, dx = rng.integers(-JITTER, JITTER + 1, 2)
    dy = int(np.clip(dy, -top, photo.shape[0] - bottom))
    crop = photo[top + dy : bottom + dy, left + dx : right + dx].astype(np.float64)
    lit = crop * rng.uniform(0.97, 1.03) + rng.normal(0, 2.0, crop.shape)  # light, sensor noise
    image = Image.fromarray(lit.clip(0, 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))


def _crop(photo: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random ``size`` crop of a grey photograph, as RGB uint8."""
    top = int(rng.integers(0, photo.shape[0] - size + 1))
    left = int(rng.integers(0, photo.shape[1] - size + 1))
    crop = photo[top : top + size, left : left + size]
    return np.repeat(crop[..., None], 3, axis=2).copy()


def _defect_mask(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    """A boolean mask for one defect of ``kind``."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "scratch":
        x0, y0 = rng.integers(size // 8, size - size // 8, 2)
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.5, 0.8) * size
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        draw.line([(int(x0), int(y0)), (int(x1), int(y1))], fill=255, width=max(3, size // 14))
    else:
        w, h = rng.uniform(0.2, 0.35, 2) * size
        cx, cy = rng.uniform(0.25, 0.75, 2) * size
        draw.ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=255)
    return np.asarray(canvas) > 0


def _apply_defect(
    image: np.ndarray, mask: np.ndarray, kind: str, gravel: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    out = image.astype(np.float32)
    if kind == "patch":
        source = _crop(gravel, rng, image.shape[0]).astype(np.float32)
        out[mask] = source[mask]
    elif kind == "scratch":  # the material under the surface shows: inverted brightness
        out[mask] = 255 - out[mask]
    else:
        colour = np.array([40.0, 170.0, 210.0]) * rng.uniform(0.8, 1.1)  # blue-green
        out[mask] = 0.2 * out[mask] + 0.8 * colour
    return out.clip(0, 255).astype(np.uint8)


def make_demo_dataset(
    root: str | Path,
    *,
    size: int = 128,
    n_train: int = 160,
    n_test_good: int = 30,
    n_test_defect: int = 15,
    n_validation_good: int = 20,
    n_validation_defect: int = 4,
    seed: int = 0,
) -> Path:
    """Write the demo data set in MVTec AD layout under ``root``; returns ``root``.

    ``n_test_defect`` images are written for each of the three defect kinds. The validation images
    go to ``root/validation/good`` and ``root/validation/defect`` (``n_validation_defect`` of each
    kind), after the others from the same random stream, so the training and test images do not
    depend on how many there are.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    coffee, gravel = _photographs()
    category = root / CATEGORY
    validation = root / VALIDATION
    folders = {
        "train": category / "train" / "good",
        "good": category / "test" / "good",
        "validation_good": validation / "good",
        "validation_defect": validation / "defect",
    }
    for kind in DEFECTS:
        folders[kind] = category / "test" / kind
        folders[f"mask_{kind}"] = category / "ground_truth" / kind
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_train):
        Image.fromarray(_view(coffee, rng, size)).save(folders["train"] / f"{i:03d}.png")
    for i in range(n_test_good):
        Image.fromarray(_view(coffee, rng, size)).save(folders["good"] / f"{i:03d}.png")
    for kind in DEFECTS:
        for i in range(n_test_defect):
            mask = _defect_mask(rng, size, kind)
            image = _apply_defect(_view(coffee, rng, size), mask, kind, gravel, rng)
            Image.fromarray(image).save(folders[kind] / f"{i:03d}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(
                folders[f"mask_{kind}"] / f"{i:03d}_mask.png"
            )
    for i in range(n_validation_good):
        Image.fromarray(_view(coffee, rng, size)).save(folders["validation_good"] / f"{i:03d}.png")
    for kind in DEFECTS:
        for i in range(n_validation_defect):
            image = _apply_defect(
                _view(coffee, rng, size), _defect_mask(rng, size, kind), kind, gravel, rng
            )
            Image.fromarray(image).save(folders["validation_defect"] / f"{kind}_{i:03d}.png")
    return root


DEMO_IMAGE_SIZE = 64
DEMO_EPOCHS = 60
DEMO_BATCH_SIZE = 16


def run_demo(
    out_dir: str | Path,
    *,
    epochs: int | None = None,
    image_size: int | None = None,
    device: str = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Write the demo data, train on it, evaluate; returns the evaluation metrics.

    The threshold is the F1-optimal one on the labelled validation images (never the test set).
    Uses random initialisation for the encoder and the perceptual network, so it needs no download.
    """
    import shutil

    from piade.config import ModelConfig
    from piade.data import build_datasets, build_test_set
    from piade.evaluation.evaluate import evaluate
    from piade.inference.detector import load
    from piade.train.config import TrainConfig
    from piade.train.run import fit

    out = Path(out_dir)
    for part in ("data", "run", "evaluation"):
        shutil.rmtree(out / part, ignore_errors=True)  # the demo always starts afresh
    make_demo_dataset(out / "data", seed=seed)
    size = image_size or DEMO_IMAGE_SIZE
    train_set, test_set = build_datasets(
        "mvtec", out / "data", CATEGORY, image_size=size, seed=seed
    )
    validation_set = build_test_set(  # good + defect; the listed "training" images are not decoded
        "folder", out / "data" / VALIDATION, None, image_size=size, seed=seed,
        normal_dir="good", normal_test_dir="good", abnormal_dir="defect",
    )  # fmt: skip
    config = TrainConfig(
        epochs=epochs or DEMO_EPOCHS,
        batch_size=DEMO_BATCH_SIZE,
        encoder_weights=None,
        perceptual_weights=None,
        device=device,
        seed=seed,
        checkpoint_every=1000,
    )
    result = fit(
        train_set,
        out / "run",
        model_config=ModelConfig(image_size=size),
        train_config=config,
        data_info={"description": "piade demo (coffee cup + synthetic defects)"},
        validation_set=validation_set,
    )
    detector = load(result.model_path, device=device)
    return evaluate(
        detector,
        test_set,
        out / "evaluation",
        title="piade demo: scikit-image coffee photograph with synthetic defects",
        model_path=str(result.model_path),
    )
