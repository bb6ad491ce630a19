"""Turning parsed flags into library objects: ``--config`` files and ``--resume`` runs as defaults,
then model and training settings, data sets and their descriptions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from piade.cli.parsers import build_parsers
from piade.cli.values import auto_or_number, precise_bn, weights
from piade.config import ModelConfig, with_legacy_values
from piade.errors import ConfigError
from piade.train.config import CHECKPOINT, RUN, TrainConfig, with_legacy_train_values

FIT_ONLY = {"help", "config", "resume", "out"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; for ``fit``, the settings recorded in OUT/run.json (with ``--resume``) and
    those of a ``--config`` YAML file become defaults that explicit flags override."""
    parser, verbs = build_parsers()
    args = parser.parse_args(argv)
    if args.verb != "fit":
        return args
    fit = verbs["fit"]
    defaults: dict[str, Any] = {}
    valid = {a.dest for a in fit._actions} - FIT_ONLY
    if args.resume and not (args.out / RUN).is_file():
        raise ConfigError(
            f"--resume: no run to resume in {args.out} (no {RUN} / {CHECKPOINT}); drop --resume to"
            " start a new run there"
        )
    if args.resume:
        run = json.loads((args.out / RUN).read_text())
        model = with_legacy_values(run.get("model", {}))
        train = with_legacy_train_values(run.get("train", {}))
        saved = run.get("data", {}).get("cli", {}) | model | train
        defaults |= {k: v for k, v in saved.items() if k in valid}
    if args.config is not None:
        defaults |= _read_yaml(args.config, valid=valid)
    if defaults:
        for key in ("root", "normal_dir", "abnormal_dir", "mask_dir", "normal_test_dir"):
            if defaults.get(key) is not None:
                defaults[key] = Path(defaults[key])
        fit.set_defaults(**defaults)
        args = parser.parse_args(argv)
    if args.data is None:
        raise ConfigError(
            "--data is required (mvtec, cifar10, coil100 or folder), unless "
            "--resume continues a run that recorded it"
        )
    return args


def _read_yaml(path: Path, *, valid: set[str]) -> dict[str, Any]:
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"--config {path}: not a UTF-8 YAML file (byte {error.start} cannot be decoded);"
            " give a text file of setting: value lines (e.g. 'epochs: 50')"
        ) from error
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"--config {path}: cannot read it as YAML ({error})") from error
    if not isinstance(values, dict):
        raise ConfigError(
            f"--config {path}: expected a mapping of setting: value lines (e.g. 'epochs: 50')"
        )
    settings = {str(k).replace("-", "_"): v for k, v in values.items()}
    renamed = {"map": "map_kind", "score": "score_kind"}
    settings = {renamed.get(k, k): v for k, v in settings.items()}
    unknown = sorted(set(settings) - valid)
    if unknown:
        raise ConfigError(
            f"--config {path}: unknown setting(s) {', '.join(unknown)}; valid: "
            f"{', '.join(sorted(valid))}"
        )
    return settings


def model_config(args: argparse.Namespace) -> ModelConfig:
    size = args.image_size
    if size is None:
        size = 32 if args.data == "cifar10" else 120
    return ModelConfig(
        image_size=size,
        center_crop=args.center_crop,
        backbone=args.backbone,
        num_vectors=args.num_vectors,
        routing_iterations=args.routing_iterations,
        decoder_init=args.decoder_init,
        squash_a=auto_or_number(args.squash_a),
    )


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        weight_decay=args.weight_decay,
        routing_weight_decay=args.routing_weight_decay,
        perceptual_weight=args.perceptual_weight,
        ssim_weight=args.ssim_weight,
        perceptual_net=args.perceptual_net,
        perceptual_depth=args.perceptual_depth,
        perceptual_weights=weights(args.perceptual_weights),
        loss_convention=args.loss_convention,
        encoder_weights=weights(args.encoder_weights),
        device=args.device,
        precision=args.precision,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        calibration_fraction=args.calibration_fraction,
        threshold_quantile=args.threshold_quantile,
        map_kind=args.map_kind,
        score_kind=args.score_kind,
        precise_bn=precise_bn(args.precise_bn),
        map_sigma=auto_or_number(args.map_sigma),
        compile=args.compile,
    )


def data_target(args: argparse.Namespace) -> Any:
    """The ``target`` argument of ``build_datasets`` from the data flags."""
    if args.data == "mvtec":
        if not args.category:
            raise ConfigError("--data mvtec needs --category (e.g. --category bottle)")
        return args.category
    if args.data in ("cifar10", "coil100"):
        if args.normal_class is None:
            raise ConfigError(f"--data {args.data} needs --normal-class")
        return int(args.normal_class) if str(args.normal_class).isdigit() else args.normal_class
    return None


def datasets(
    args: argparse.Namespace,
    *,
    image_size: int,
    center_crop: float = 1.0,
    before_decoding: Callable[[], None] | None = None,
) -> tuple[Any, Any]:
    """The (train, test) data sets the data flags name (``before_decoding``: see build_datasets)."""
    from piade.data import build_datasets

    return build_datasets(
        *_data_arguments(args),
        image_size=image_size,
        center_crop=center_crop,
        before_decoding=before_decoding,
        **_data_options(args),
    )


def test_set(args: argparse.Namespace, *, image_size: int, center_crop: float = 1.0) -> Any:
    """The test set alone (``evaluate``: the training images are not decoded)."""
    from piade.data import build_test_set

    return build_test_set(
        *_data_arguments(args),
        image_size=image_size,
        center_crop=center_crop,
        **_data_options(args),
    )


def _data_arguments(args: argparse.Namespace) -> tuple[str, Any, Any]:
    if args.data != "folder" and args.root is None:
        raise ConfigError(f"--data {args.data} needs --root (the data set's folder)")
    return args.data, args.root, data_target(args)


def _data_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"on_error": args.on_error}
    if args.data == "folder":
        if args.normal_dir is None:
            raise ConfigError(
                "--data folder needs --normal-dir (and optionally --abnormal-dir, --mask-dir)"
            )
        options |= {
            "normal_dir": args.normal_dir,
            "abnormal_dir": args.abnormal_dir,
            "mask_dir": args.mask_dir,
            "normal_test_dir": args.normal_test_dir,
            "normal_split": args.normal_split,
        }
    return options | {"seed": getattr(args, "seed", 0)}


def data_info(args: argparse.Namespace) -> dict[str, Any]:
    """The data flags as recorded in run.json (so ``--resume`` needs only ``--out``)."""
    keys = (
        "data",
        "root",
        "category",
        "normal_class",
        "normal_dir",
        "abnormal_dir",
        "mask_dir",
        "normal_test_dir",
        "normal_split",
        "on_error",
    )
    cli = {
        k: (str(v) if isinstance(v, Path) else v)
        for k in keys
        if (v := getattr(args, k)) is not None
    }
    return {"cli": cli, "description": data_title(args)}


def data_title(args: argparse.Namespace) -> str:
    target = args.category or args.normal_class or (args.normal_dir and args.normal_dir.name)
    return f"{args.data} {target}"
