"""``piade benchmark``: the paper's tables for piade, its ablation and the baselines.

``piade benchmark SUITE --root PATH --out DIR [--classes a,b] [--methods piade,ocsvm] ...`` runs a
suite; ``piade benchmark merge DIR [DIR ...] --out DIR`` joins directories made by split runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from piade.cli.shared_flags import add_flags
from piade.errors import ConfigError

log = logging.getLogger(__name__)

SUITES = ("cifar10", "coil100", "mvtec", "folder")


def _names(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _seeds(value: str) -> list[int]:
    try:
        return [int(item) for item in _names(value)]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected integers like 0,1,2; got {value!r}") from error


def add_parser(verbs: Any, formatter: type[argparse.HelpFormatter]) -> argparse.ArgumentParser:
    """Add the ``benchmark`` verb to the ``piade`` sub-parsers."""
    help_ = "train and evaluate per class under the paper's protocols; write the paper's tables"
    parser: argparse.ArgumentParser = verbs.add_parser(
        "benchmark", help=help_, description=help_, formatter_class=formatter
    )
    parser.set_defaults(verb="benchmark")
    parser.add_argument(
        "suite", choices=(*SUITES, "merge"), help="data set protocol, or merge to join result dirs"
    )
    parser.add_argument("inputs", nargs="*", type=Path, help="merge: benchmark directories to join")
    parser.add_argument("--out", type=Path, required=True, help="benchmark directory (resumable)")
    parser.add_argument("--root", type=Path, help="data set root folder")
    parser.add_argument("--classes", type=_names, default=[], help="comma list (default: all)")
    parser.add_argument(
        "--methods",
        type=_names,
        default=["piade"],
        help="comma list of piade, piade-1v, ocsvm, kde, ae-l2, ae-ssim",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="add piade-1v (one vector, no routing) to the methods; on MVTec without --classes, "
        "run the seven categories of the paper's Fig. 4",
    )
    parser.add_argument("--seeds", type=_seeds, default=[0], help="comma list of seeds")
    parser.add_argument("--epochs", type=int, help="piade's epochs (default: the paper's 400)")
    parser.add_argument(
        "--batch-size", type=int, help="piade's batch size (default: the paper's 120)"
    )
    add_flags(parser, "--lr-schedule", prefix="piade's learning rate: ")
    parser.add_argument(
        "--baseline-epochs", type=int, help="ae-l2 / ae-ssim epochs (default 200; batch 128)"
    )
    add_flags(parser, "--image-size", "--center-crop", "--device")
    add_flags(
        parser,
        "--backbone",
        "--encoder-weights",
        "--perceptual-net",
        "--perceptual-depth",
        "--perceptual-weights",
        "--loss-convention",
        "--map",
        prefix="piade: ",
    )
    data = parser.add_argument_group("folder suite")
    data.add_argument("--normal-dir", type=Path, help="normal images (relative to --root)")
    data.add_argument("--abnormal-dir", type=Path, help="anomalous test images")
    data.add_argument("--mask-dir", type=Path, help="masks of the anomalous images")
    data.add_argument("--normal-test-dir", type=Path, help="normal test images")
    data.add_argument("--normal-split", type=float, default=0.2)
    parser.add_argument(
        "--on-error", choices=("raise", "skip"), default="raise", help="unreadable image files"
    )
    parser.add_argument("--cache-dir", type=Path, help="disk cache of decoded images")
    return parser


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``piade benchmark``; prints the image-AUROC table."""
    from piade.benchmark import merge, run_benchmark
    from piade.benchmark.tables import build_tables, render_image_table
    from piade.runtime import resolve_device, warn_if_cores_busy

    if args.suite == "merge":
        if not args.inputs:
            raise ConfigError(
                "piade benchmark merge needs the directories to join: merge A B --out C"
            )
        results = merge(args.inputs, args.out)
        suite = results[0]["suite"] if results else None
    else:
        if args.inputs:
            raise ConfigError(
                f"unexpected argument(s) {' '.join(map(str, args.inputs))}; only 'merge' takes "
                "directories"
            )
        config = benchmark_config(args, argv)
        warn_if_cores_busy(resolve_device(config.device), log)
        results = run_benchmark(config, args.out)
        suite = config.suite
    if not results or suite is None:
        print(f"no results in {args.out}")
        return 0
    print(render_image_table(build_tables(results, suite=suite)))
    print(f"tables: {args.out / 'results.md'}, results.csv, results.json")
    return 0


def benchmark_config(args: argparse.Namespace, argv: list[str]) -> Any:
    """The :class:`~piade.benchmark.BenchmarkConfig` of the parsed arguments."""
    from piade.benchmark import ABLATION_CLASSES, BenchmarkConfig, list_classes
    from piade.cli.values import weights

    if args.root is None and args.suite != "folder":
        raise ConfigError(f"piade benchmark {args.suite} needs --root (the data set's folder)")
    options: dict[str, Any] = {"on_error": args.on_error}
    if args.cache_dir is not None:
        options["cache_dir"] = str(args.cache_dir)
    if args.suite == "folder":
        if args.normal_dir is None:
            raise ConfigError("piade benchmark folder needs --normal-dir (and --abnormal-dir)")
        for key in ("normal_dir", "abnormal_dir", "mask_dir", "normal_test_dir"):
            if getattr(args, key) is not None:
                options[key] = str(getattr(args, key))
        options["normal_split"] = args.normal_split
    methods = list(args.methods) + (["piade", "piade-1v"] if args.ablation else [])
    classes = list(args.classes)
    if args.ablation and args.suite == "mvtec" and not classes:
        found = list_classes("mvtec", str(args.root))
        classes = [c for c in ABLATION_CLASSES if c in found] or found
    return BenchmarkConfig(
        suite=args.suite,
        root=str(args.root) if args.root is not None else "",
        methods=tuple(dict.fromkeys(methods)),
        classes=tuple(classes),
        seeds=tuple(args.seeds),
        image_size=args.image_size,
        center_crop=args.center_crop,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr_schedule=args.lr_schedule,
        baseline_epochs=args.baseline_epochs,
        device=args.device,
        backbone=args.backbone,
        encoder_weights=weights(args.encoder_weights),
        perceptual_net=args.perceptual_net,
        perceptual_depth=args.perceptual_depth,
        perceptual_weights=weights(args.perceptual_weights),
        loss_convention=args.loss_convention,
        map_kind=args.map_kind,
        data_options=options,
        command=" ".join(["piade", *argv]),
    )
