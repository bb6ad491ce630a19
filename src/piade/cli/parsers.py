"""The flags of every ``piade`` verb: :func:`build_parsers` returns the top-level parser and one
sub-parser per verb (their defaults are those of :class:`~piade.config.ModelConfig` and
:class:`~piade.train.TrainConfig`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from piade.cli import benchmark as cli_benchmark
from piade.cli import serve as cli_serve
from piade.cli.shared_flags import add_flags
from piade.cli.values import auto_or_number, check_batch_size, positive_int, precise_bn
from piade.config import (
    DECODER_INITS,
    MAP_FORMATS,
    MAP_STYLES,
    SCORE_KINDS,
    ModelConfig,
)
from piade.train.config import COMPILE_MODES, TrainConfig

DATASETS = ("mvtec", "cifar10", "coil100", "folder")
Formatter = argparse.ArgumentDefaultsHelpFormatter
T = TrainConfig()
M = ModelConfig()


def _verb(verbs: Any, name: str, help_: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = verbs.add_parser(
        name, help=help_, description=help_, formatter_class=Formatter
    )
    parser.set_defaults(verb=name)
    return parser


def _data_flags(parser: argparse.ArgumentParser, *, required: bool) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", choices=DATASETS, required=required, help="data set format and protocol"
    )
    group.add_argument("--root", type=Path, help="data set root folder")
    group.add_argument("--category", help="MVTec AD category, e.g. bottle")
    group.add_argument(
        "--normal-class", help="CIFAR-10 class (index or name) or COIL object id taken as normal"
    )
    group.add_argument("--normal-dir", type=Path, help="folder data: normal images")
    group.add_argument("--abnormal-dir", type=Path, help="folder data: anomalous test images")
    group.add_argument("--mask-dir", type=Path, help="folder data: masks of the anomalous images")
    group.add_argument(
        "--normal-test-dir",
        type=Path,
        help="folder data: normal test images (default: a seeded share of --normal-dir)",
    )
    group.add_argument(
        "--normal-split",
        type=float,
        default=0.2,
        help="folder data: share of --normal-dir kept for testing without --normal-test-dir",
    )
    group.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="raise",
        help="unreadable image files: stop, or skip them with a warning",
    )


def _fit_flags(parser: argparse.ArgumentParser) -> None:
    model = parser.add_argument_group("model")
    add_flags(model, "--image-size", "--center-crop", "--backbone")
    model.add_argument(
        "--num-vectors",
        type=int,
        default=M.num_vectors,
        help="instantiation vectors (1 = the no-routing ablation)",
    )
    model.add_argument("--routing-iterations", type=int, default=M.routing_iterations)
    model.add_argument(
        "--squash-a",
        type=auto_or_number,
        default=M.squash_a,
        help="constant a of the squash (Eq. 3): auto = n*d/J^2 for n primary capsules of d "
        "dimensions and J vectors, so lengths are not saturated; 1 is the paper-literal value",
    )
    model.add_argument(
        "--decoder-init",
        choices=DECODER_INITS,
        default=M.decoder_init,
        help="bilinear: transposed convolutions start as bilinear upsampling (trains under the "
        "paper's loss); orthogonal: the paper's literal init (docs/training.md)",
    )
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=T.epochs)
    train.add_argument("--batch-size", type=int, default=T.batch_size, help="global batch size")
    train.add_argument("--lr", type=float, default=T.lr, help="Adam learning rate")
    add_flags(train, "--lr-schedule")
    train.add_argument("--weight-decay", type=float, default=T.weight_decay)
    train.add_argument(
        "--routing-weight-decay",
        type=float,
        default=T.routing_weight_decay,
        help="weight decay of the routing matrices W_ij alone (default: --weight-decay's, as in the paper)",
    )
    add_flags(
        train,
        "--encoder-weights",
        "--perceptual-net",
        "--perceptual-depth",
        "--perceptual-weights",
        "--loss-convention",
    )
    train.add_argument("--perceptual-weight", type=float, default=T.perceptual_weight, help="λ1")
    train.add_argument("--ssim-weight", type=float, default=T.ssim_weight, help="λ2")
    add_flags(train, "--device")
    train.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default=T.precision,
        help="autocast: auto is bf16 on GPUs that have it and fp32 on the CPU; bf16 on a CPU"
        " needs AVX512-BF16 or AMX",
    )
    train.add_argument(
        "--compile",
        nargs="?",
        const="default",
        choices=COMPILE_MODES,
        default=T.compile,
        help="torch.compile the training step (mode: default; reduce-overhead adds CUDA graphs)."
        " Meant for GPUs and small images: 1.25x at 32 px but 0.9x at 120 px on the development"
        " CPU (docs/performance.md); compiling takes about a minute",
    )
    train.add_argument("--seed", type=int, default=T.seed)
    train.add_argument("--checkpoint-every", type=int, default=T.checkpoint_every, help="epochs")
    train.add_argument(
        "--calibration-fraction",
        type=float,
        default=T.calibration_fraction,
        help="share of the training images held out to calibrate the score",
    )
    train.add_argument(
        "--threshold-quantile",
        type=float,
        default=T.threshold_quantile,
        help="threshold = this quantile of the held-out normal scores",
    )
    add_flags(train, "--map")
    train.add_argument(
        "--map-sigma",
        dest="map_sigma",
        type=auto_or_number,
        default="auto",
        metavar="{auto,SIGMA}",
        help="σ in pixels of the Gaussian smoothing of the anomaly map; auto: image side / 30"
        " (4 px at 120 px: bottle pixel AUROC 0.942 -> 0.963); 0: not smoothed",
    )
    train.add_argument(
        "--precise-bn",
        dest="precise_bn",
        type=precise_bn,
        default="auto",
        metavar="{auto,on,off}",
        help="batch-norm statistics of the model file: 'on' recomputes them exactly on the training"
        " images after the last epoch (bottle at 400 epochs: image AUROC 0.875 -> 0.937), 'off'"
        " keeps training's running averages (the paper's), 'auto' keeps whichever gives the lower"
        " eval-mode loss on the training images (docs/training.md)",
    )
    train.add_argument(
        "--score",
        dest="score_kind",
        default=T.score_kind,
        choices=SCORE_KINDS,
        help="image score, stored in the model file: loss (the paper's mean total loss),"
        " loss-balanced (its three terms, each divided by its mean on held-out normal images),"
        " map-max / map-top1 (maximum / top 1%% mean of the smoothed anomaly map),"
        " perceptual-top1 (top 1%% of the smoothed ImageNet-feature residual), loss-x-map"
        " (loss-balanced times map-max; the best on average here); docs/engine.md compares them",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="YAML file of settings (keys as the flags, e.g. epochs: 50); "
        "flags given on the command line win",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (settings are "
        "read from OUT/run.json; --epochs may be raised)",
    )
    parser.add_argument("--out", type=Path, required=True, help="run directory to write")


def _precision_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="the network in bf16 autocast (a CPU needs AVX512-BF16 or AMX; scores change by"
        " about 1e-3, docs/performance.md)",
    )


def _compile_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile",
        action="store_true",
        help="score through torch.compile with the weights frozen: the first batch compiles (about"
        " a minute on a 2-core CPU), the rest run 1.2-1.25x faster there; for long jobs only",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``piade`` argument parser."""
    return build_parsers()[0]


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``piade`` parser and its verb subparsers by name."""
    from piade.version import __version__

    parser = argparse.ArgumentParser(
        prog="piade",
        formatter_class=Formatter,
        description="Image anomaly detection with deep pyramidal representations and dynamic "
        "routing (Mishra, Piciarelli & Foresti, IJNS 2020).",
    )
    parser.add_argument("--version", action="version", version=f"piade {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    fit = _verb(verbs, "fit", "train a detector on normal images and calibrate it")
    _data_flags(fit, required=False)
    _fit_flags(fit)

    evaluate = _verb(verbs, "evaluate", "score a labelled test set; write metrics and a report")
    evaluate.add_argument("model", help="model file, or the --out directory of 'piade fit'")
    _data_flags(evaluate, required=True)
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics and report")
    evaluate.add_argument("--batch-size", type=positive_int, default=32)
    evaluate.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    _precision_flag(evaluate)
    _compile_flag(evaluate)

    predict = _verb(verbs, "predict", "score images; write scores.csv and anomaly maps")
    predict.add_argument(
        "model",
        help="model file, the --out directory of 'piade fit', or a .onnx file of 'piade export'"
        " (run with ONNX Runtime on the CPU, without torch)",
    )
    predict.add_argument("inputs", nargs="+", type=Path, metavar="IMAGE_OR_DIR")
    predict.add_argument("--out", type=Path, required=True, help="folder for scores.csv and maps")
    predict.add_argument("--batch-size", type=positive_int, default=16)
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    _precision_flag(predict)
    _compile_flag(predict)
    predict.add_argument(
        "--maps",
        choices=MAP_STYLES,
        default="overlay",
        help="maps/: each map over its image, the map alone, or none (scores.csv only)",
    )
    predict.add_argument("--no-maps", action="store_true", help="the same as --maps none")
    predict.add_argument(
        "--map-format",
        choices=MAP_FORMATS,
        default="png",
        help="maps/ files: png (lossless) or jpg (about 20x cheaper to write, for viewing)",
    )
    predict.add_argument(
        "--on-error",
        choices=("raise", "skip"),
        default="skip",
        help="unreadable files: stop, or record them in scores.csv and go on",
    )

    export = _verb(verbs, "export", "export the detector to ONNX and check it against PyTorch")
    export.add_argument("model", help="model file, or the --out directory of 'piade fit'")
    export.add_argument("--format", choices=("onnx",), default="onnx")
    export.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    export.add_argument(
        "--check-batch-size",
        type=check_batch_size,
        default=2,
        help="batch size of the export example (the check uses one more)",
    )
    export.add_argument(
        "--check-images",
        nargs="+",
        type=Path,
        metavar="IMAGE_OR_DIR",
        help="also check ONNX Runtime against PyTorch on these images (up to 16)",
    )

    demo = _verb(verbs, "demo", "train and evaluate on built-in texture photographs with defects")
    demo.add_argument("--out", type=Path, default=Path("piade-demo"), help="folder to write")
    demo.add_argument("--epochs", type=int, default=None, help="default: the demo's tuned value")
    demo.add_argument("--image-size", type=int, default=None, help="default: the demo's value")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda[:N] or mps")
    demo.add_argument("--seed", type=int, default=0)

    benchmark = cli_benchmark.add_parser(verbs, Formatter)
    serve = cli_serve.add_parser(verbs, Formatter, _precision_flag)

    info = _verb(verbs, "info", "print the network's size and forward FLOPs for a configuration")
    info.add_argument("--image-size", type=int, default=M.image_size)
    info.add_argument("--backbone", default=M.backbone, help="resnet18|34|50 or timm:<name>")
    info.add_argument("--num-vectors", type=int, default=M.num_vectors)
    info.add_argument("--encoder-weights", default="none", help="none, imagenet or a file")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser, {
        "fit": fit,
        "evaluate": evaluate,
        "predict": predict,
        "export": export,
        "demo": demo,
        "info": info,
        "benchmark": benchmark,
        "serve": serve,
    }
