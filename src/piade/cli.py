"""The ``piade`` command line: ``main(argv) -> exit code``; each verb parses, calls the library, reports.

Errors piade raises on purpose (:class:`piade.errors.PiadeError`) print as one line on stderr with exit
code 2; ``--debug`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from piade.config import ModelConfig
from piade.errors import ConfigError, PiadeError

log = logging.getLogger("piade")


def _info(args: argparse.Namespace) -> int:
    """Print the network's configuration, parameter count and forward FLOPs per image."""
    from piade.model import build_model
    from piade.profile import count_parameters, forward_flops

    config = ModelConfig(
        image_size=args.image_size, backbone=args.backbone, num_vectors=args.num_vectors
    )
    model = build_model(config, encoder_weights=args.encoder_weights)
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


def build_parser() -> argparse.ArgumentParser:
    from piade import __version__

    parser = argparse.ArgumentParser(
        prog="piade",
        description="Image anomaly detection with deep pyramidal representations and dynamic "
        "routing (Mishra, Piciarelli & Foresti, IJNS 2020).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"piade {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    info = verbs.add_parser(
        "info",
        help="print the network's size and cost for a configuration",
        description="Build the network and print its parameter count and the forward FLOPs per "
        "image, measured with torch.utils.flop_counter.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    info.add_argument(
        "--image-size",
        type=int,
        default=ModelConfig.image_size,
        help="side of the square input in pixels",
    )
    info.add_argument(
        "--backbone",
        default=ModelConfig.backbone,
        help="resnet18, resnet34, resnet50 or timm:<name>",
    )
    info.add_argument(
        "--num-vectors",
        type=int,
        default=ModelConfig.num_vectors,
        help="instantiation vectors (1 = the no-routing ablation)",
    )
    info.add_argument(
        "--encoder-weights",
        default="none",
        help="none, imagenet, or a local state_dict file for the backbone",
    )
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(handler=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` when None); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except (PiadeError, ConfigError) as error:
        if args.debug:
            raise
        print(f"piade {args.verb}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"piade {args.verb}: interrupted", file=sys.stderr)
        return 130
