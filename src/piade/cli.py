"""The ``piade`` command line: ``main(argv) -> exit code``; each verb parses, calls the library, reports.

Before any data is read, every verb checks its ``--device`` and that its ``--out`` can be written.
Errors piade raises on purpose (:class:`piade.errors.PiadeError`) and operating-system errors (a
full disk, a folder without write permission) print as one line on stderr with exit code 2;
``--debug`` shows the full traceback instead. Skipped files (``--on-error skip``) are reported as
one ``piade VERB: warning: ...`` line each.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from piade import cli_args
from piade.cli_checks import describe_os_error, preflight
from piade.config import ModelConfig
from piade.errors import ConfigError, PiadeError, printable
from piade.runtime import keep_freed_memory

if TYPE_CHECKING:
    _StreamHandler = logging.StreamHandler[TextIO]
else:  # StreamHandler is subscriptable at run time only from Python 3.11
    _StreamHandler = logging.StreamHandler

log = logging.getLogger("piade")


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
    from piade.engine import fit

    model_config, train_config = cli_args.model_config(args), cli_args.train_config(args)
    train_set, _ = cli_args.datasets(args, image_size=model_config.image_size)
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


def _evaluate(args: argparse.Namespace) -> int:
    from piade.detector import load
    from piade.evaluation import evaluate
    from piade.modelfile import resolve_model_path

    detector = load(args.model, device=args.device)
    _, test_set = cli_args.datasets(args, image_size=detector.image_size)
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
        print(f"{key:12s} {'n/a' if value is None else round(value, 4)}")
    print(f"metrics: {Path(args.out) / 'metrics.json'}\nreport:  {metrics['report']}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from piade.detector import load
    from piade.predict import predict

    detector = load(args.model, device=args.device)
    summary = predict(
        detector,
        args.inputs,
        args.out,
        batch_size=args.batch_size,
        save_maps=not args.no_maps,
        on_error=args.on_error,
    )
    print(
        f"scored {summary.scored} image(s), {summary.anomalous} above the threshold, "
        f"{summary.failed} unreadable; scores: {summary.csv_path}"
    )
    return 0 if summary.failed == 0 or args.on_error == "skip" else 1


def _export(args: argparse.Namespace) -> int:
    from piade.detector import load
    from piade.export import TOLERANCES, export_onnx

    detector = load(args.model, device="cpu")
    images = None
    if args.check_images:
        import torch

        from piade.data.decode import read_rgb, resize_image
        from piade.predict import find_images

        paths = list(find_images(args.check_images))[:16]
        if not paths:
            raise ConfigError(f"--check-images {args.check_images[0]}: no image files found")
        size = detector.image_size
        images = torch.stack([resize_image(read_rgb(str(p)), size) for p in paths]).float() / 255
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
    from piade import cli_benchmark

    return cli_benchmark.run(args, args.argv)


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "info": _info,
    "fit": _fit,
    "evaluate": _evaluate,
    "predict": _predict,
    "export": _export,
    "demo": _demo,
    "benchmark": _benchmark,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` when None); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[CurrentStderrHandler()],
        force=True,  # replace the handlers of an earlier call (in-process runs, tests)
    )
    verb = next((a for a in argv if a in HANDLERS), "piade")
    try:
        with warnings.catch_warnings():
            _report_data_warnings(verb)
            args = cli_args.parse_args(argv)
            args.argv = argv
            preflight(args)
            keep_freed_memory()  # CPU speed: see piade.runtime
            return HANDLERS[args.verb](args)
    except PiadeError as error:
        if debug:
            raise
        _error(verb, str(error))
        return 2
    except OSError as error:
        if debug:
            raise
        _error(verb, describe_os_error(error))
        return 2
    except KeyboardInterrupt:
        print(f"piade {verb}: interrupted", file=sys.stderr)
        return 130


class CurrentStderrHandler(_StreamHandler):
    """Writes each record to ``sys.stderr`` as it is when the record is emitted, so a program (or a
    test) that swaps ``sys.stderr`` between in-process runs never logs into a stale stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """The stream is always the current ``sys.stderr``; assignments are ignored."""


def _error(verb: str, message: str) -> None:
    """Print ``message`` as exactly one line (a library's message may hold line breaks)."""
    line = " ".join(printable(message).split())
    print(f"piade {verb}: error: {line}", file=sys.stderr)


def _report_data_warnings(verb: str) -> None:
    """Show each skipped file (a :class:`piade.data.DataWarning`) as one line on stderr, and
    silence Pillow's warnings: piade refuses oversized images itself (one error line naming the
    file), and damaged metadata either decodes or gives that error."""
    from PIL import Image

    from piade.data.common import DataWarning

    default = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, DataWarning):
            print(f"piade {verb}: warning: {printable(str(message))}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
    warnings.simplefilter("always", DataWarning)
    warnings.showwarning = show
