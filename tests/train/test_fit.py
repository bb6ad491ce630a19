"""Training: run directory contents, reproducibility, resume, bad settings, non-finite loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.fakes import TINY_BACKBONE, normal_set

from piade import ModelConfig
from piade.errors import ConfigError
from piade.model import build_model
from piade.train.checkpoint import CheckpointError
from piade.train.config import TrainConfig
from piade.train.loop import TrainingError, precise_batch_norm
from piade.train.run import fit

MODEL = ModelConfig(image_size=32, backbone=TINY_BACKBONE)


def _config(**overrides: object) -> TrainConfig:
    settings: dict[str, object] = {
        "epochs": 2,
        "batch_size": 8,
        "encoder_weights": None,
        "perceptual_weights": None,
        "device": "cpu",
        "seed": 3,
    }
    return TrainConfig(**(settings | overrides))  # type: ignore[arg-type]


def test_fit_writes_a_run_directory(tmp_path: Path) -> None:
    result = fit(normal_set(20), tmp_path / "run", model_config=MODEL, train_config=_config())
    names = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"run.json", "metrics.jsonl", "checkpoint.pt", "model.safetensors"} <= names
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert lines[0]["images"] == 18  # 20 images, 2 held out (10 %) for calibration
    assert all(x["loss"] > 0 for x in lines)
    assert result.model_path == tmp_path / "run" / "model.safetensors"
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["model"]["image_size"] == 32 and run["train"]["epochs"] == 2


def test_training_lowers_the_loss(tmp_path: Path) -> None:
    fit(normal_set(24), tmp_path, model_config=MODEL, train_config=_config(epochs=6))
    losses = [json.loads(x)["loss"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.7 * losses[0]


def test_same_seed_same_weights(tmp_path: Path) -> None:
    for name in ("a", "b"):
        fit(normal_set(12), tmp_path / name, model_config=MODEL, train_config=_config())
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_equals_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schedule: str
) -> None:
    config = _config(epochs=4, checkpoint_every=2, lr_schedule=schedule)
    fit(normal_set(12), tmp_path / "straight", model_config=MODEL, train_config=config)

    import piade.train.run

    calls = {"n": 0}
    real = piade.train.run.train_epoch

    def crash_in_epoch_4(*args: object, **kwargs: object) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the process dies during epoch 4; epoch 2's checkpoint is kept
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(piade.train.run, "train_epoch", crash_in_epoch_4)
    with pytest.raises(KeyboardInterrupt):
        fit(normal_set(12), tmp_path / "resumed", model_config=MODEL, train_config=config)
    monkeypatch.setattr(piade.train.run, "train_epoch", real)
    assert not (tmp_path / "resumed" / "model.safetensors").exists()
    fit(normal_set(12), tmp_path / "resumed", model_config=MODEL, train_config=config, resume=True)
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("straight", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    epochs = [
        json.loads(x)["epoch"]
        for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [1, 2, 3, 4]


def test_the_cosine_schedule_anneals_the_learning_rate_from_lr_to_zero(tmp_path: Path) -> None:
    config = _config(epochs=4, lr=2e-3, lr_schedule="cosine")
    fit(normal_set(12), tmp_path, model_config=MODEL, train_config=config)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # epoch e of E runs at lr (1 + cos(pi e / E)) / 2: 1, 0.854, 0.5, 0.146 times lr
    assert [x["lr"] for x in lines] == pytest.approx([2e-3, 1.7071e-3, 1e-3, 0.2929e-3], rel=1e-4)
    constant = _config(epochs=3, lr=2e-3)
    assert [constant.learning_rate(e) for e in range(3)] == [2e-3] * 3


def test_an_unknown_learning_rate_schedule_is_one_clear_error() -> None:
    with pytest.raises(
        ConfigError, match=r"lr_schedule='linear'.*lr_schedule one of constant, cosine"
    ):
        _config(lr_schedule="linear")


def test_an_existing_run_is_not_overwritten(tmp_path: Path) -> None:
    fit(normal_set(8), tmp_path, model_config=MODEL, train_config=_config(epochs=1))
    before = (tmp_path / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match="already holds a piade run"):
        fit(normal_set(8), tmp_path, model_config=MODEL, train_config=_config(epochs=1))
    assert (tmp_path / "model.safetensors").read_bytes() == before


def test_resume_with_other_settings_is_refused(tmp_path: Path) -> None:
    fit(normal_set(8), tmp_path, model_config=MODEL, train_config=_config(epochs=1))
    with pytest.raises(CheckpointError, match=r"train\.weight_decay"):
        fit(
            normal_set(8),
            tmp_path,
            model_config=MODEL,
            train_config=_config(epochs=2, weight_decay=0.1),
            resume=True,
        )


def test_resume_without_checkpoint_is_explained(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nothing to resume"):
        fit(normal_set(8), tmp_path, model_config=MODEL, train_config=_config(), resume=True)


def test_non_finite_loss_stops_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="non-finite in epoch"):
        fit(normal_set(8), tmp_path, model_config=MODEL, train_config=_config(lr=1e30))


@pytest.mark.parametrize(
    "settings",
    [
        {"epochs": 0},
        {"batch_size": 1},
        {"lr": -1.0},
        {"calibration_fraction": 1.5},
        {"routing_weight_decay": -1e-4},
        {"perceptual_depth": 0},
        {"perceptual_depth": 22},  # VGG-11's features have 21 modules
        {"loss_convention": "paper"},  # design or authors
    ],
)
def test_invalid_training_settings(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(settings))):
        _config(**settings)


def test_routing_weight_decay_applies_to_the_routing_matrices_alone(tmp_path: Path) -> None:
    # A huge weight decay drives the weights it applies to towards zero at about lr per Adam step.
    def norms(name: str, **settings: object) -> tuple[float, float]:
        train = _config(epochs=3, lr=1e-2, **settings)
        fit(normal_set(12), tmp_path / name, model_config=MODEL, train_config=train)
        weights = load_file(tmp_path / name / "model.safetensors")
        others = [
            v.norm().item()
            for k, v in weights.items()
            if k.startswith("model.upsampling") and k.endswith("weight")
        ]
        return weights["model.routing.weight"].norm().item(), sum(others)

    w_both, up_both = norms("both", weight_decay=10.0)
    w_apart, up_apart = norms("apart", weight_decay=10.0, routing_weight_decay=0.0)
    w_plain, up_plain = norms("plain", weight_decay=0.0)
    assert w_both < 0.8 * w_apart and w_apart == pytest.approx(w_plain, rel=0.05)
    assert up_apart < 0.8 * up_plain and up_apart == pytest.approx(up_both, rel=0.05)
    checkpoint = torch.load(tmp_path / "apart" / "checkpoint.pt", weights_only=False)
    groups = checkpoint["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups] == [10.0, 0.0]
    assert len(groups[1]["params"]) == 1  # W alone


def test_the_model_file_keeps_the_perceptual_depth(tmp_path: Path) -> None:
    """A detector scores with the perceptual layers it was trained with."""
    from piade.inference.detector import load

    train = _config(epochs=1, perceptual_net="vgg16", perceptual_depth=6)
    result = fit(normal_set(12), tmp_path, model_config=MODEL, train_config=train)
    detector = load(result.model_path)
    layers = detector.criterion.perceptual_net
    assert len(layers) == 6 and layers[-1].out_channels == 128
    assert detector.info["loss"]["perceptual_depth"] == 6
    trained = load_file(result.model_path)
    assert torch.equal(trained["perceptual.5.weight"], layers[5].weight)


def test_precise_bn_sets_exact_statistics_and_leaves_the_weights() -> None:
    """After the pass, the first batch norm's running mean is its input's mean over the images
    (one batch holds them all), whatever the running averages held before."""
    torch.manual_seed(0)
    model = build_model(MODEL)
    norm = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    norm.running_mean.fill_(5.0)
    seen: list[torch.Tensor] = []
    handle = norm.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    weights = {k: v.clone() for k, v in model.named_parameters()}
    images = normal_set(12).images
    assert precise_batch_norm(model.eval(), images, batch_size=16) > 0
    handle.remove()
    torch.testing.assert_close(norm.running_mean, seen[0].mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-5)
    assert norm.momentum == 0.1 and not model.training
    assert all(torch.equal(v, weights[k]) for k, v in model.named_parameters())


def test_fit_writes_precise_statistics_and_keeps_training_ones_in_the_checkpoint(
    tmp_path: Path,
) -> None:
    for name, precise in (("exact", True), ("running", False)):
        fit(
            normal_set(12),
            tmp_path / name,
            model_config=MODEL,
            train_config=_config(precise_bn=precise),
        )
    key = next(
        k for k in load_file(tmp_path / "exact" / "model.safetensors") if k.endswith("running_mean")
    )
    exact = load_file(tmp_path / "exact" / "model.safetensors")[key]
    running = load_file(tmp_path / "running" / "model.safetensors")[key]
    assert not torch.allclose(exact, running)
    checkpoint = torch.load(tmp_path / "exact" / "checkpoint.pt", weights_only=True)
    torch.testing.assert_close(checkpoint["model"][key.removeprefix("model.")], running)


def test_auto_batch_norm_keeps_the_statistics_with_the_lower_training_loss(tmp_path: Path) -> None:
    from piade.inference.detector import load

    runs = {}
    for name, precise in (("exact", True), ("running", False), ("auto", None)):
        fit(
            normal_set(12),
            tmp_path / name,
            model_config=MODEL,
            train_config=_config(precise_bn=precise),
        )
        runs[name] = load(tmp_path / name)
    chosen = runs["auto"].info["batch_norm"]
    losses = chosen["training_loss"]
    assert chosen["statistics"] == min(losses, key=losses.get)
    assert runs["exact"].info["batch_norm"]["statistics"] == "exact"
    assert runs["running"].info["batch_norm"] == {"statistics": "running"}
    key = next(k for k, _ in runs["auto"].model.named_buffers() if k.endswith("running_mean"))
    picked = dict(runs[chosen["statistics"]].model.named_buffers())[key]
    assert torch.equal(dict(runs["auto"].model.named_buffers())[key], picked)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"train_set": [1, 2, 3]}, "train_set: expected a piade data set"),
        ({"train_set": "images/"}, "got str"),
        ({"model_config": {"image_size": 32}}, "model_config: expected a piade.ModelConfig, got dict"),
        ({"train_config": {"epochs": 1}}, "train_config: expected a piade.TrainConfig, got dict"),
        ({"out_dir": None}, "out_dir: expected a folder path, got NoneType"),
        ({"model_config": ModelConfig(image_size=64, backbone=TINY_BACKBONE)},
         "its images are (3, 32, 32) but model_config.image_size is 64"),
        ({"train_config": _config(precision="fp16")}, "--precision fp16 is for CUDA devices"),
    ],
    ids=["list", "string", "model-dict", "train-dict", "no-out", "size-mismatch", "cpu-fp16"],
)  # fmt: skip
def test_bad_fit_arguments_are_named(
    tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    call: dict[str, object] = {
        "train_set": normal_set(4),
        "out_dir": tmp_path / "run",
        "model_config": MODEL,
        "train_config": _config(),
    } | arguments
    with pytest.raises(ConfigError) as caught:
        fit(**call)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert not (tmp_path / "run").exists()  # refused before anything was written


def test_load_names_a_path_that_is_not_one() -> None:
    from piade.inference.detector import load

    with pytest.raises(
        ConfigError, match="path: expected a model file or run folder path, got int"
    ):
        load(3)  # type: ignore[arg-type]


def test_too_few_calibration_images_for_the_quantile_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="piade.train.run"):
        fit(normal_set(20), tmp_path / "q99", model_config=MODEL, train_config=_config(epochs=1))
    (message,) = [r.getMessage() for r in caplog.records if "held-out" in r.getMessage()]
    assert "0.99 quantile of only 2 held-out" in message and "--calibration-fraction" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="piade.train.run"):
        cfg = _config(epochs=1, threshold_quantile=0.5)
        fit(normal_set(20), tmp_path / "median", model_config=MODEL, train_config=cfg)
    assert not [r for r in caplog.records if "held-out" in r.getMessage()]
