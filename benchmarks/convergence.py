"""Does training converge? Each loss term per epoch beside two references that need no training.

Runs ``piade fit`` (in-process, exactly the command a user runs) once per variant and prints, per
epoch, the training loss terms from ``metrics.jsonl`` beside the same terms of two fixed outputs on
the same training images:

* ``zero``: an all-zero output in the decoder's [-1, 1] range (a flat mid-grey image);
* ``mean``: the mean training image, the best output that ignores its input.

A network that has learnt nothing input-specific cannot beat ``mean``; one stuck on a flat output
sits at ``zero``. The summary gives, per variant, the first epoch whose training MSE falls below the
mean image's MSE (``null`` if none did). Variants are extra ``piade fit`` flags::

    python benchmarks/convergence.py --out runs/conv \\
        --variant literal="--decoder-init orthogonal" --variant default="" -- \\
        --data mvtec --root ../shared/data/mvtec_ad --category bottle --epochs 20 \\
        --batch-size 16 --encoder-weights none --perceptual-net vgg16 \\
        --perceptual-weights ../shared/weights/vgg16_features_0-7_imagenet.pth

Prints JSON lines (``"kind": "epoch"``, ``"reference"``, ``"summary"``), then a table.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

import torch

from piade import cli
from piade.cli.args import datasets, parse_args
from piade.data.dataset import stack_images
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.preprocess import to_signed
from piade.train.checkpoint import METRICS

TERMS = ("loss", "mse", "perceptual", "ssim")


def references(fit_flags: list[str], *, batch_size: int = 32) -> dict[str, dict[str, float]]:
    """The loss terms of the zero output and of the mean training image, on the training images."""
    args = parse_args(["fit", *fit_flags, "--out", "unused"])
    size = args.image_size or (32 if args.data == "cifar10" else 120)
    train, _ = datasets(args, image_size=size, center_crop=args.center_crop)
    images = to_signed(stack_images(train).float() / 255)  # (N, 3, H, W) in [-1, 1]
    weights = None if str(args.perceptual_weights).lower() == "none" else args.perceptual_weights
    criterion = ReconstructionLoss(
        build_perceptual_network(args.perceptual_net, weights=weights),
        perceptual_weight=args.perceptual_weight,
        ssim_weight=args.ssim_weight,
    )
    outputs = {"zero": torch.zeros_like(images[:1]), "mean": images.mean(dim=0, keepdim=True)}
    result = {}
    with torch.no_grad():
        for name, output in outputs.items():
            sums = dict.fromkeys(TERMS, 0.0)
            for batch in images.split(batch_size):
                terms = criterion(batch, output.expand_as(batch))
                for key, value in zip(TERMS, (terms.total, *terms[:3]), strict=True):
                    sums[key] += value.double().sum().item()
            result[name] = {k: v / len(images) for k, v in sums.items()}
    return result


def run_variant(
    name: str, flags: list[str], fit_flags: list[str], out: Path
) -> list[dict[str, Any]]:
    """Train one variant (resuming a finished or stopped run) and return its metrics.jsonl lines."""
    run_dir = out / name
    argv = ["fit", *fit_flags, *flags, "--out", str(run_dir)]
    if (run_dir / "checkpoint.pt").is_file():
        argv.append("--resume")
    if not (run_dir / "model.safetensors").is_file() or "--resume" in argv:
        code = cli.main(argv)
        if code:
            raise SystemExit(f"variant {name}: piade fit exited with {code}")
    lines = (run_dir / METRICS).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def first_below(records: list[dict[str, Any]], reference: float) -> int | None:
    """The first epoch whose training MSE is below ``reference``, or None."""
    return next((int(r["epoch"]) for r in records if r["mse"] < reference), None)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for one run per variant")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=FLAGS",
        help="a variant: its name and the extra piade fit flags (repeatable; default: one, no flags)",
    )
    parser.add_argument("fit_flags", nargs=argparse.REMAINDER, help="-- then the piade fit flags")
    args = parser.parse_args()
    fit_flags = [f for f in args.fit_flags if f != "--"]
    variants = [v.partition("=") for v in args.variant] or [("default", "=", "")]
    refs = references(fit_flags)
    for name, values in refs.items():
        print(json.dumps({"kind": "reference", "output": name, **values}))
    summary = []
    for name, _, flags in variants:
        records = run_variant(name, shlex.split(flags), fit_flags, args.out)
        for r in records:
            print(
                json.dumps(
                    {"kind": "epoch", "variant": name, **{k: r[k] for k in ("epoch", *TERMS)}}
                )
            )
        first = first_below(records, refs["mean"]["mse"])
        last = records[-1]
        summary.append((name, flags, first, last))
        print(json.dumps({"kind": "summary", "variant": name, "flags": flags,
                          "epochs": int(last["epoch"]), "first_epoch_below_mean_mse": first,
                          "final_mse": last["mse"], "final_loss": last["loss"]}))  # fmt: skip
    print(f"\nreferences (training images): zero output MSE {refs['zero']['mse']:.4f}, "
          f"loss {refs['zero']['loss']:.4f}; mean image MSE {refs['mean']['mse']:.4f}, "
          f"loss {refs['mean']['loss']:.4f}")  # fmt: skip
    print(
        f"{'variant':<16} {'epochs':>6} {'final MSE':>10} {'final loss':>10}  first epoch MSE < mean image"
    )
    for name, _, first, last in summary:
        print(
            f"{name:<16} {int(last['epoch']):>6} {last['mse']:>10.4f} {last['loss']:>10.4f}  {first}"
        )


if __name__ == "__main__":
    main()
