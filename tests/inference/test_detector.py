"""The model file and the detector: round trip, safety checks, calibration, maps, ONNX export."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tests.fakes import TINY_BACKBONE, TensorImages, add_defect, normal_image, normal_set

from piade import ModelConfig
from piade.errors import ConfigError
from piade.inference.detector import Detector, load, score_dataset
from piade.inference.modelfile import ModelFileError, read_model_file, write_model_file
from piade.metrics import image_auroc, pixel_auroc
from piade.train.config import TrainConfig
from piade.train.run import fit


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    config = TrainConfig(
        epochs=3,
        batch_size=8,
        encoder_weights=None,
        perceptual_weights=None,
        device="cpu",
        calibration_fraction=0.25,
    )
    fit(
        normal_set(16),
        out,
        model_config=ModelConfig(image_size=32, backbone=TINY_BACKBONE),
        train_config=config,
    )
    return out


def test_load_accepts_the_file_or_the_run_directory(run_dir: Path) -> None:
    images = normal_set(4, seed=9).images.float() / 255
    a = load(run_dir).score(images)
    b = load(run_dir / "model.safetensors").score(images)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_scores_are_the_balanced_loss_times_the_map_by_default_and_the_papers_on_request(
    run_dir: Path,
) -> None:
    detector = load(run_dir)
    images = normal_set(3, seed=5).images.float() / 255
    result = detector.score(images)
    cal = detector.calibration
    assert cal.score_kind == "loss-x-map"  # fit's default (docs/engine.md)
    s = cal.map_scales
    balanced = (
        result.mse / s["mse"] + result.perceptual / s["perceptual"] + (1 - result.ssim) / s["ssim"]
    )
    every = detector.score_every_kind(images)
    torch.testing.assert_close(every["loss-balanced"], balanced)
    torch.testing.assert_close(result.score, balanced * every["map-max"])
    torch.testing.assert_close(every["loss"], result.mse + result.perceptual + (1 - result.ssim))
    torch.testing.assert_close(
        result.normalized_score, (result.score - cal.score_mean) / cal.score_std
    )
    assert torch.equal(result.label, (result.score > cal.threshold).long())
    assert result.anomaly_map.shape == (3, 32, 32)
    assert torch.equal(result.decoded, result.lengths.argmax(dim=1))


def test_calibration_comes_from_held_out_normal_images(run_dir: Path) -> None:
    cal = load(run_dir).calibration
    assert cal.n_images == 4  # 25 % of 16
    assert cal.threshold_method == "quantile:0.99"
    assert set(cal.map_scales) == {"ssim", "perceptual", "mse"}
    assert cal.score_std > 0 and cal.map_normal_p99 > 0


def test_model_file_holds_safetensors_and_json_only(run_dir: Path) -> None:
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
        keys = list(handle.keys())
    info = json.loads(metadata["info"])
    assert metadata["format"] == "piade" and metadata["format_version"] == "1"
    assert info["model"]["image_size"] == 32 and "calibration" in info and "preprocessing" in info
    assert any(k.startswith("perceptual.") for k in keys)  # scoring needs no download


def test_tampered_file_is_detected(run_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(run_dir / "model.safetensors")
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    name = next(k for k in tensors if k.endswith("weight"))
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata=metadata)
    with pytest.raises(ModelFileError, match="checksum"):
        load(tmp_path / "m.safetensors")


def test_truncated_file_is_detected(run_dir: Path, tmp_path: Path) -> None:
    data = (run_dir / "model.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        load(tmp_path / "m.safetensors")


def test_other_format_version_is_explained(run_dir: Path, tmp_path: Path) -> None:
    tensors = load_file(run_dir / "model.safetensors")
    with safe_open(str(run_dir / "model.safetensors"), framework="pt") as handle:
        metadata = dict(handle.metadata()) | {"format_version": "99"}
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata=metadata)
    with pytest.raises(ModelFileError, match="format version 99"):
        load(tmp_path / "m.safetensors")


def test_pickle_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError):
        load(tmp_path / "m.safetensors")


def test_missing_model_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load(tmp_path / "nope.safetensors")
    with pytest.raises(ModelFileError, match=r"directory without model\.safetensors"):
        load(tmp_path)


def test_save_load_round_trip_gives_identical_scores(run_dir: Path, tmp_path: Path) -> None:
    detector = load(run_dir)
    detector.save(tmp_path / "copy.safetensors")
    images = normal_set(5, seed=7).images.float() / 255
    a, b = detector.score(images), load(tmp_path / "copy.safetensors").score(images)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)


def test_the_loss_convention_is_kept_in_the_model_file(run_dir: Path, tmp_path: Path) -> None:
    """A model scores in the units it was trained in after loading: the authors' by default, the
    design's on request; older files, which lack the setting, load in the design's."""
    images = normal_set(4, seed=3).images.float() / 255
    authors = load(run_dir)
    assert authors.criterion.convention == "authors"
    assert authors.info["loss"]["convention"] == "authors"
    with torch.no_grad():
        unit = (authors.model(images).reconstruction + 1) / 2
    expected = (images - unit).pow(2).mean(dim=(1, 2, 3))  # of the images in [0, 1]
    torch.testing.assert_close(authors.score(images).mse, expected, rtol=1e-4, atol=1e-7)

    config = TrainConfig(epochs=1, batch_size=8, encoder_weights=None, perceptual_weights=None,
                         device="cpu", calibration_fraction=0.25, loss_convention="design")  # fmt: skip
    model_config = ModelConfig(image_size=32, backbone=TINY_BACKBONE)
    fit(normal_set(16), tmp_path / "design", model_config=model_config, train_config=config)
    design = load(tmp_path / "design")
    assert design.criterion.convention == "design"
    with torch.no_grad():
        signed = design.model(images).reconstruction
    expected = (images * 2 - 1 - signed).pow(2).mean(dim=(1, 2, 3))  # of the images in [-1, 1]
    torch.testing.assert_close(design.score(images).mse, expected, rtol=1e-4, atol=1e-7)

    tensors, info = read_model_file(run_dir / "model.safetensors")
    del info["loss"]["convention"]  # as written before the option existed
    write_model_file(tmp_path / "old.safetensors", tensors, info)
    assert load(tmp_path / "old.safetensors").criterion.convention == "design"


def test_anomalous_images_score_higher_and_maps_point_at_the_defect(run_dir: Path) -> None:
    detector = load(run_dir)
    rng = np.random.default_rng(11)
    normal = [normal_image(rng, 32) for _ in range(6)]
    defects = [add_defect(normal_image(rng, 32), rng) for _ in range(6)]
    data = TensorImages(np.stack(normal + [d[0] for d in defects]), [0] * 6 + [1] * 6)
    scored = score_dataset(detector, data, keep=("anomaly_map",))
    # 3 epochs on 16 images: one misranked pair of the 36 at most (seed 0 misranks one)
    assert image_auroc(np.array([0] * 6 + [1] * 6), scored["score"]) >= 35 / 36
    masks = np.stack([np.zeros((32, 32), bool)] * 6 + [mask for _, mask in defects])
    assert pixel_auroc(masks, scored["anomaly_map"]) > 0.8
    for k, (_, mask) in enumerate(defects):
        heat = scored["anomaly_map"][6 + k]
        assert heat[mask].mean() > 1.5 * heat[~mask].mean()


def test_map_at_resizes_to_the_original_resolution(run_dir: Path) -> None:
    detector: Detector = load(run_dir)
    assert detector.map_at(torch.rand(2, 32, 32), 50, 70).shape == (2, 50, 70)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((1, 3, 32, 32), np.float32), "got ndarray (torch.from_numpy"),
        (
            torch.zeros(1, 3, 32, 32, dtype=torch.uint8),
            "dtype torch.uint8 (divide uint8 images by 255)",
        ),
        (torch.zeros(1, 3, 16, 16), "got shape (1, 3, 16, 16)"),
        (torch.full((1, 3, 32, 32), 255.0), "values from 255 to 255"),
        (torch.full((1, 3, 32, 32), float("nan")), "values from nan to nan"),
        (torch.full((1, 3, 32, 32), -1.0), "scale them to [0, 1]"),
    ],
    ids=["numpy", "uint8", "shape", "0-255", "nan", "minus-one"],
)
def test_bad_images_are_refused_naming_the_problem(
    run_dir: Path, images: object, message: str
) -> None:
    from piade.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^images: expected a float tensor") as caught:
        load(run_dir).score(images)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_loading_a_model_file_skips_the_initialisation_it_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.reliability.conftest import tiny_detector

    import piade.model

    path = tmp_path / "model.safetensors"
    saved = tiny_detector()
    saved.save(path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("orthogonal initialisation ran while loading a model file")

    monkeypatch.setattr(piade.model, "orthogonal_init", refuse)
    loaded = Detector.load(path)
    expected, found = saved.model.state_dict(), loaded.model.state_dict()
    assert expected.keys() == found.keys()
    assert all(torch.equal(expected[k], found[k]) for k in expected)


def test_a_compiled_detector_scores_like_the_eager_one(run_dir: Path) -> None:
    """``--compile``: one compilation for the first batch's size; a smaller batch is padded and a
    larger one sliced, and every output equals the eager pass's to float32 rounding."""
    eager, compiled = load(run_dir), load(run_dir, compile=True)
    images = normal_set(11, seed=4).images.float() / 255
    for batch in (images[:4], images[:3], images):  # compiled for 4, then padded, then sliced
        want, got = eager.score(batch), compiled.score(batch)
        for name, x, y in zip(want._fields, want, got, strict=True):
            assert x.shape == y.shape, name
            assert torch.allclose(x.float(), y.float(), rtol=1e-4, atol=1e-5), name
    assert compiled._compiled is not None and compiled._compiled.batch_size == 4
    every = compiled.score_every_kind(images[:2])
    assert every.keys() == eager.score_every_kind(images[:2]).keys()


def test_a_compiler_failure_is_one_clear_error(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch._dynamo

    def broken(*args: object, **kwargs: object) -> object:
        def fail(*a: object) -> None:
            raise torch._dynamo.exc.InternalTorchDynamoError("no C++ compiler found")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    detector = load(run_dir, compile=True)
    with pytest.raises(
        ConfigError, match=re.escape("--compile failed (no C++ compiler found); score without")
    ):
        detector.score(normal_set(2).images.float() / 255)
