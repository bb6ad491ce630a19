"""ModelConfig: the paper's defaults, validation, and a lossless dict round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from piade import ModelConfig
from piade.config import with_legacy_values
from piade.errors import ConfigError
from piade.train.checkpoint import CheckpointError, check_same_run


def test_defaults_are_the_papers() -> None:
    config = ModelConfig()
    assert (config.backbone, config.num_vectors, config.vector_dim, config.capsule_dim) == (
        "resnet18",
        2,
        64,
        8,
    )
    assert (config.routing_iterations, config.se_reduction) == (3, 2)
    assert config.pyramid_scales == (1, 2, 4, 8)


def test_departures_from_the_paper_text_are_one_setting_away() -> None:
    """The defaults that train (docs/training.md) and the paper-literal values they replace."""
    config = ModelConfig()
    assert (config.decoder_init, config.squash_a) == ("bilinear", None)
    literal = ModelConfig(decoder_init="orthogonal", squash_a=1.0)
    assert ModelConfig.from_dict(literal.to_dict()) == literal


def test_frozen_and_keyword_only() -> None:
    config = ModelConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.image_size = 64  # type: ignore[misc]
    with pytest.raises(TypeError):
        ModelConfig(64)  # type: ignore[misc]


def test_dict_round_trip() -> None:
    config = ModelConfig(image_size=64, num_vectors=1, pyramid_channels=(64, 32, 16, 8))
    assert ModelConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"image_size": 16}, "image_size"),
        ({"backbone": "vgg11"}, "backbone"),
        ({"backbone": "timm:"}, "backbone"),
        ({"num_vectors": 0}, "num_vectors"),
        ({"squash_a": 0.0}, "squash_a"),
        ({"decoder_init": "xavier"}, "decoder_init"),
        ({"pyramid_channels": (64, 32)}, "one entry per pyramid scale"),
        ({"pyramid_channels": (60, 32, 16, 8)}, "multiple of capsule_dim"),
    ],
)
def test_invalid_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)  # type: ignore[arg-type]


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"unknown model setting.*image_sise"):
        ModelConfig.from_dict({"image_sise": 64})


def test_configs_saved_before_decoder_init_read_as_orthogonal() -> None:
    """Runs and model files written before the setting existed used the orthogonal decoder."""
    old = ModelConfig(decoder_init="orthogonal", squash_a=1.0).to_dict()
    del old["decoder_init"]
    config = ModelConfig.from_dict(with_legacy_values(old))
    assert (config.decoder_init, config.squash_a) == ("orthogonal", 1.0)
    run = {"model": config.to_dict(), "train": {}}
    check_same_run({"model": old, "train": {}}, run, Path("run"))  # resumes: nothing differs
    with pytest.raises(CheckpointError, match=r"model\.decoder_init"):
        check_same_run(
            {"model": old, "train": {}},
            {"model": ModelConfig().to_dict() | {"squash_a": 1.0}, "train": {}},
            Path("run"),
        )


@pytest.mark.parametrize(
    ("flag", "value"),
    [([], None), (["--precise-bn", "on"], True), (["--precise-bn", "OFF"], False)],
)
def test_precise_bn_flag(flag: list[str], value: bool | None) -> None:
    from piade.cli.args import parse_args, train_config

    args = parse_args(
        ["fit", "--data", "mvtec", "--root", "r", "--category", "c", "--out", "o", *flag]
    )
    assert train_config(args).precise_bn is value


def test_a_bad_precise_bn_value_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    from piade.cli.args import parse_args

    with pytest.raises(SystemExit):
        parse_args(
            [
                "fit",
                "--data",
                "mvtec",
                "--root",
                "r",
                "--category",
                "c",
                "--out",
                "o",
                "--precise-bn",
                "1",
            ]
        )
    assert "--precise-bn" in capsys.readouterr().err


def test_runs_saved_before_the_central_crop_resume_and_load_whole() -> None:
    old = ModelConfig().to_dict()
    del old["center_crop"]
    assert ModelConfig.from_dict(with_legacy_values(old)).center_crop == 1.0
    check_same_run(
        {"model": old, "train": {}}, {"model": ModelConfig().to_dict(), "train": {}}, Path("run")
    )
    with pytest.raises(CheckpointError, match=r"model\.center_crop"):
        cut = ModelConfig(center_crop=0.5).to_dict()
        check_same_run({"model": old, "train": {}}, {"model": cut, "train": {}}, Path("run"))


def test_runs_saved_before_the_loss_units_and_perceptual_depth_resume_as_they_trained(
    tmp_path: Path,
) -> None:
    """A run.json without ``loss_convention`` or ``perceptual_depth`` trained in the design's
    units with VGG's first four modules: it resumes as that, and refuses other values."""
    from piade.cli.args import parse_args
    from piade.train.config import TrainConfig

    old = TrainConfig().to_dict()
    for key in ("loss_convention", "perceptual_depth", "routing_weight_decay"):
        del old[key]
    saved = {"model": ModelConfig().to_dict(), "train": old}
    same = TrainConfig(loss_convention="design", perceptual_depth=4).to_dict()
    check_same_run(saved, {"model": ModelConfig().to_dict(), "train": same}, Path("run"))
    for change in ({"loss_convention": "authors"}, {"perceptual_depth": 3}):
        key = next(iter(change))
        with pytest.raises(CheckpointError, match=rf"train\.{key}"):
            other = TrainConfig(**(same | change)).to_dict()
            check_same_run(saved, {"model": ModelConfig().to_dict(), "train": other}, Path("run"))

    (tmp_path / "run.json").write_text(
        json.dumps(saved | {"data": {"cli": {"data": "mvtec", "root": "r", "category": "c"}}})
    )
    args = parse_args(["fit", "--resume", "--out", str(tmp_path)])
    assert (args.loss_convention, args.perceptual_depth) == ("design", 4)
