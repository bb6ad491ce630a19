"""One function per ``piade`` verb: turn the parsed flags into library calls and print the result.

Each takes the ``argparse.Namespace`` of its verb and returns the exit code; :data:`HANDLERS` maps
verb names to them. Heavy modules are imported inside each verb, so ``piade --help`` stays quick.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from piade.cli import args as cli_args
from piade.config import ModelConfig
from piade.errors import ConfigError

log = logging.getLogger(__name__)


def _info(args: argparse.Namespace) -> int:
    """Print the network's configuration, parameter count and forward FLOPs per image."""
    from piade.model import build_model
    from piade.profile import count_parameters, forward_flops

    config = ModelConfig(
        image_size=args.image_size or 120, backbone=args.backbone, num_vectors=args.num_vectors
    )
    model = build_model(config, encoder_weights=cli_args.weights(args.encoder_weights))
    report = {
        "config": config.to_dict(),
        "parameters": count_parameters(model),
        "primary_capsules": model.pyramid.num_capsules,
        "feature_map_side": model.feature_side,
        "forward_gflops_per_image": round(forward_flops(model, config.image_size) / 1e9, 4),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key:26s} {value}")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from piade.runtime import resolve_device, warn_if_cores_busy
    from piade.train.run import fit

    model_config, train_config = cli_args.model_config(args), cli_args.train_config(args)
    warn_if_cores_busy(resolve_device(train_config.device), log)

    def check_weights_files() -> None:  # before the images are decoded: no wasted wait
        from piade.weights import check_weights

        check_weights(train_config.encoder_weights, arch=model_config.backbone)
        check_weights(train_config.perceptual_weights, arch=train_config.perceptual_net)

    train_set, _ = cli_args.datasets(
        args,
        image_size=model_config.image_size,
        center_crop=model_config.center_crop,
        before_decoding=check_weights_files,
    )
    result = fit(
        train_set,
        args.out,
        model_config=model_config,
        train_config=train_config,
        data_info=cli_args.data_info(args),
        resume=args.resume,
    )
    if result.last_epoch:
        print(
            f"trained {result.last_epoch['epoch']} epochs, last loss "
            f"{result.last_epoch['loss']:.4f}"
        )
    print(f"model: {result.model_path}")
    return 0


MAX_PRINTED_GROUPS = 12  # more (COIL's 19 other objects) are left to metrics.json and the report


def _evaluate(args: argparse.Namespace) -> int:
    from piade.evaluation.evaluate import evaluate
    from piade.inference.detector import load
    from piade.inference.modelfile import resolve_model_path

    detector = load(args.model, device=args.device, precision=args.precision, compile=args.compile)
    tic = time.perf_counter()
    test_set = cli_args.test_set(
        args, image_size=detector.image_size, center_crop=detector.config.center_crop
    )
    metrics = evaluate(
        detector,
        test_set,
        args.out,
        batch_size=args.batch_size,
        title=f"piade evaluation: {cli_args.data_title(args)}",
        model_path=str(resolve_model_path(args.model)),
    )
    for key in ("image_auroc", "pixel_auroc", "aupro", "f1_max", "n_normal", "n_anomalous"):
        value = metrics[key]
        interval = metrics["image_auroc_interval"] if key == "image_auroc" else None
        within = f"  (95 % interval {interval[0]:.4f}-{interval[1]:.4f})" if interval else ""
        print(f"{key:12s} {'n/a' if value is None else round(value, 4)}{within}")
    groups = metrics["groups"] or []
    if 1 < len(groups) <= MAX_PRINTED_GROUPS:
        print("by group (flagged: scored above the threshold; AUROC against all normal images):")
        width = max(len(g["group"]) for g in groups)
        for g in groups:
            auroc = "" if g["image_auroc"] is None else f", AUROC {g['image_auroc']:.4f}"
            print(f"  {g['group']:{width}s} {g['label']:9s} {g['flagged']}/{g['n']} flagged{auroc}")
    print(f"metrics: {Path(args.out) / 'metrics.json'}\nreport:  {metrics['report']}")
    print(_rate(len(test_set), time.perf_counter() - tic, "read, scored and reported"))
    return 0


def _rate(images: int, seconds: float, what: str) -> str:
    """One line: how many images per second the verb handled, end to end."""
    return f"{images / max(seconds, 1e-9):.1f} images/s ({images} images {what} in {seconds:.2f} s)"


def _predict(args: argparse.Namespace) -> int:
    from piade.inference.portable import OnnxDetector, is_onnx_path
    from piade.inference.predict import predict

    detector: object
    if is_onnx_path(args.model):
        detector = OnnxDetector.load(args.model)
    else:
        from piade.inference.detector import load

        detector = load(
            args.model, device=args.device, precision=args.precision, compile=args.compile
        )
    tic = time.perf_counter()
    summary = predict(
        detector,
        args.inputs,
        args.out,
        batch_size=args.batch_size,
        maps="none" if args.no_maps else args.maps,
        map_format=args.map_format,
        on_error=args.on_error,
    )
    print(
        f"scored {summary.scored} image(s), {summary.anomalous} above the threshold, "
        f"{summary.failed} unreadable; scores: {summary.csv_path}"
    )
    print(
        _rate(summary.scored + summary.failed, time.perf_counter() - tic, "read, scored, written")
    )
    return 0 if summary.failed == 0 or args.on_error == "skip" else 1


def _export(args: argparse.Namespace) -> int:
    from piade.inference.detector import load
    from piade.inference.export import TOLERANCES, export_onnx

    detector = load(args.model, device="cpu")
    images = None
    if args.check_images:
        import torch

        from piade.data.decode import read_rgb, resize_image
        from piade.inference.predict import find_images

        paths = list(find_images(args.check_images))[:16]
        if not paths:
            raise ConfigError(f"--check-images {args.check_images[0]}: no image files found")
        size, crop = detector.image_size, detector.config.center_crop
        images = torch.stack([resize_image(read_rgb(str(p)), size, crop) for p in paths]) / 255
    diffs = export_onnx(detector, args.out, batch_size=args.check_batch_size, images=images)
    checked = (
        f"noise, 6 image-like inputs{'' if images is None else f' and {len(images)} of yours'}"
    )
    print(
        f"wrote {args.out}; ONNX Runtime matches PyTorch on {checked} "
        "(relative differences: "
        + ", ".join(f"{name} {diff:.1e} <= {TOLERANCES[name]:.0e}" for name, diff in diffs.items())
        + ")"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from piade.demo import run_demo

    metrics = run_demo(
        args.out, epochs=args.epochs, image_size=args.image_size, device=args.device, seed=args.seed
    )
    print(
        f"image AUROC {metrics['image_auroc']:.4f}  pixel AUROC {metrics['pixel_auroc']:.4f}  "
        f"AUPRO {metrics['aupro']:.4f}"
    )
    print(f"report: {metrics['report']}")
    return 0


def _benchmark(args: argparse.Namespace) -> int:
    from piade.cli import benchmark as cli_benchmark

    return cli_benchmark.run(args, args.argv)


def _serve(args: argparse.Namespace) -> int:
    from piade.cli import serve as cli_serve

    return cli_serve.run(args)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "info": _info,
    "fit": _fit,
    "evaluate": _evaluate,
    "predict": _predict,
    "export": _export,
    "demo": _demo,
    "benchmark": _benchmark,
    "serve": _serve,
}
