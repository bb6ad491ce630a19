"""Image scores read from the anomaly maps: the maths, the calibration, the model file, ONNX."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.fakes import TINY_BACKBONE, normal_set, offline_train_config

from piade import ModelConfig
from piade.inference.detector import load
from piade.inference.scoring import SCORE_KINDS, RawScores, image_score, smooth_maps
from piade.losses import LossTerms
from piade.train.loop import split_calibration
from piade.train.run import fit

SCALES = {"ssim": 1.0, "perceptual": 1.0, "mse": 1.0}


def raw_with(maps: torch.Tensor) -> RawScores:
    """RawScores whose every residual is ``maps`` (B, H, W) and whose total loss is 7."""
    b = maps.shape[0]
    terms = LossTerms(*(torch.full((b,), 7.0) for _ in range(4)))
    return RawScores(terms, {"ssim": maps, "perceptual": maps, "mse": maps}, None)  # type: ignore[arg-type]


def test_smoothing_keeps_constants_and_spreads_a_spike() -> None:
    flat = torch.full((1, 30, 30), 0.3)
    torch.testing.assert_close(smooth_maps(flat, 2.0), flat)
    spike = torch.zeros(1, 30, 30)
    spike[0, 15, 15] = 1.0
    smoothed = smooth_maps(spike, 2.0)
    assert smoothed.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert smoothed.max() < 0.05 and smoothed[0, 15, 15] == smoothed.max()


def test_map_scores_rank_a_small_blob_above_diffuse_noise() -> None:
    """The mean of a map hides a small hot blob; the max and top-1 % of the smoothed map do not."""
    torch.manual_seed(0)
    noise = torch.rand(2, 60, 60) * 0.2
    blob = noise[1].clone()
    blob[28:33, 28:33] = 1.0  # 25 of 3600 pixels
    maps = torch.stack([noise[0] + 0.01, blob])
    assert maps[0].mean() > maps[1].mean() - 0.01  # near-equal means
    for kind in ("map-max", "map-top1", "perceptual-top1"):
        scores = image_score(raw_with(maps), kind, map_kind="ssim", scales=SCALES)
        assert scores[1] > 2 * scores[0], kind
    loss = image_score(raw_with(maps), "loss", map_kind="ssim", scales=SCALES)
    assert loss.tolist() == [7.0, 7.0]
    with pytest.raises(ValueError, match="image score kind"):
        image_score(raw_with(maps), "median", map_kind="ssim", scales=SCALES)


def test_balanced_loss_weighs_each_term_by_its_normal_mean() -> None:
    """Image 0 has the larger total only through the large-unit feature term; balanced, image 1's
    tenfold MSE counts as much as image 0's doubled feature residual and more."""
    mse, perceptual, ssim = torch.tensor([0.01, 0.1]), torch.tensor([2.0, 1.0]), torch.ones(2) * 0.8
    terms = LossTerms(mse, perceptual, ssim, mse + perceptual + 1 - ssim)
    raw = RawScores(terms, {}, None)  # type: ignore[arg-type]
    scales = {"mse": 0.01, "perceptual": 1.0, "ssim": 0.2}
    assert image_score(raw, "loss", map_kind="ssim", scales=scales).argmax() == 0
    balanced = image_score(raw, "loss-balanced", map_kind="ssim", scales=scales)
    torch.testing.assert_close(balanced, torch.tensor([1 + 2 + 1, 10 + 1 + 1.0]))


def test_loss_x_map_is_the_balanced_loss_times_the_map_maximum() -> None:
    """A small hot blob (local evidence) and a doubled MSE (whole-image evidence) both raise it."""
    torch.manual_seed(0)
    maps = torch.rand(3, 60, 60) * 0.2
    maps[1, 28:33, 28:33] = 1.0  # image 1: a small defect
    mse, perceptual, ssim = torch.tensor([0.01, 0.01, 0.02]), torch.ones(3), torch.full((3,), 0.8)
    terms = LossTerms(mse, perceptual, ssim, mse + perceptual + 1 - ssim)
    raw = RawScores(terms, {"ssim": maps, "perceptual": maps, "mse": maps}, None)  # type: ignore[arg-type]
    scales = {"mse": 0.01, "perceptual": 1.0, "ssim": 0.2}
    product = image_score(raw, "loss-x-map", map_kind="ssim", scales=scales)
    parts = [
        image_score(raw, k, map_kind="ssim", scales=scales) for k in ("loss-balanced", "map-max")
    ]
    torch.testing.assert_close(product, parts[0] * parts[1])
    assert product[1] > product[0] and product[2] > product[0]


def test_balanced_loss_is_near_three_on_the_held_out_normal_images(tmp_path: Path) -> None:
    """Each term divided by its own mean on the calibration images: about 1 each there."""
    config = offline_train_config(epochs=1, calibration_fraction=0.25, score_kind="loss-balanced")
    fit(normal_set(16), tmp_path, model_config=ModelConfig(image_size=32, backbone=TINY_BACKBONE),
        train_config=config)  # fmt: skip
    cal = load(tmp_path).calibration
    assert cal.score_kind == "loss-balanced"
    assert cal.score_mean == pytest.approx(3.0, rel=0.05)  # the feature map is upsampled


def test_top1_is_the_mean_of_the_highest_hundredth() -> None:
    maps = torch.arange(10 * 10, dtype=torch.float32).reshape(1, 10, 10)
    smoothed = smooth_maps(maps, 10 / 30).flatten()
    top1 = image_score(raw_with(maps), "map-top1", map_kind="ssim", scales=SCALES)
    assert top1.item() == pytest.approx(smoothed.max().item())  # 1 % of 100 pixels: one


@pytest.fixture(scope="module")
def top1_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("top1")
    config = offline_train_config(epochs=2, calibration_fraction=0.25, score_kind="map-top1")
    model = ModelConfig(image_size=32, backbone=TINY_BACKBONE)
    fit(normal_set(16), out, model_config=model, train_config=config)
    return out


def test_the_score_kind_is_stored_calibrated_and_used(top1_run: Path) -> None:
    detector = load(top1_run)
    assert detector.calibration.score_kind == "map-top1"
    images = normal_set(4, seed=9).images.float() / 255
    detection = detector.score(images)
    assert detector.calibration.map_sigma == pytest.approx(32 / 30)
    # the map shown is smoothed as the score's map is: the score is the top 1 % of what one sees
    top = detection.anomaly_map.flatten(1).topk(10, dim=1).values.mean(dim=1)
    torch.testing.assert_close(detection.score, top)
    assert torch.equal(detection.label, (detection.score > detector.calibration.threshold).long())
    _, held_out = split_calibration(16, 0.25, seed=0)  # what fit calibrated on
    normal = detector.score(normal_set(16).images[held_out].float() / 255).score
    assert detector.calibration.score_mean == pytest.approx(normal.double().mean().item(), rel=1e-4)


def test_the_map_is_smoothed_by_its_stored_sigma(top1_run: Path) -> None:
    from piade.inference.scoring import combine_maps, score_images

    detector = load(top1_run)
    images = normal_set(3, seed=5).images.float() / 255
    cal = detector.calibration
    raw = combine_maps(
        score_images(detector.model, detector.criterion, images).residuals, "ssim", cal.map_scales
    )
    shown = detector.score(images).anomaly_map
    torch.testing.assert_close(shown, smooth_maps(raw, cal.map_sigma))
    assert shown.std() < raw.std()
    detector.calibration = dataclasses.replace(cal, map_sigma=0.0)  # as in older model files
    torch.testing.assert_close(detector.score(images).anomaly_map, raw)


def test_old_model_files_keep_the_papers_score(top1_run: Path, tmp_path: Path) -> None:
    detector = load(top1_run)
    legacy = dataclasses.asdict(detector.calibration)
    del legacy["score_kind"], legacy["map_sigma"]  # files written before these existed
    detector.calibration = type(detector.calibration)(**legacy)
    assert (detector.calibration.score_kind, detector.calibration.map_sigma) == ("loss", 0.0)
    images = normal_set(3, seed=2).images.float() / 255
    from piade.inference.scoring import score_images

    raw = score_images(detector.model, detector.criterion, images)
    torch.testing.assert_close(detector.score(images).score, raw.terms.total)


class _EveryScore(torch.nn.Module):
    """Every score kind of one scoring pass's terms and residual maps, stacked (kinds, B)."""

    def forward(self, terms: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        raw = RawScores(
            LossTerms(*terms.unbind(0)),
            {"ssim": maps[0], "perceptual": maps[1], "mse": maps[2]},
            None,  # type: ignore[arg-type]
        )
        scales = {"ssim": 0.5, "perceptual": 2.0, "mse": 0.25}
        kinds = [image_score(raw, k, map_kind="combined", scales=scales) for k in SCORE_KINDS]
        return torch.stack(kinds)


@pytest.mark.filterwarnings("ignore:# The axis name")  # both inputs share the batch axis, as meant
def test_every_score_kind_exports_to_onnx(top1_run: Path, tmp_path: Path) -> None:
    """The whole detector exports with the kind that composes two others (``loss-x-map``), and
    each kind's own operators (top-k, max, smoothing) give ONNX Runtime PyTorch's scores, with a
    batch size the export never saw. (One whole export per kind cost a minute of the suite.)"""
    pytest.importorskip("onnxscript")
    import onnxruntime

    from piade.inference.export import export_onnx

    detector = load(top1_run)
    detector.calibration = dataclasses.replace(detector.calibration, score_kind="loss-x-map")
    assert export_onnx(detector, tmp_path / "loss-x-map.onnx")["score"] <= 1e-4
    assert np.isfinite(detector.calibration.threshold)

    generator = torch.Generator().manual_seed(0)

    def inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:  # the four terms, the three maps
        terms = torch.rand(4, batch, generator=generator)
        return terms, torch.rand(3, batch, 32, 32, generator=generator)

    terms, maps = inputs(2)
    path = tmp_path / "scores.onnx"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.onnx.export(
        _EveryScore().eval(), (terms, maps), str(path), input_names=["terms", "maps"],
        dynamic_shapes=({1: batch}, {1: batch}), dynamo=True, verbose=False,
    )  # fmt: skip
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    terms, maps = inputs(5)
    maps[:, 3, 10:14, 20:24] += 2.0  # a hot blob, so the map scores differ between images
    (got,) = session.run(None, {"terms": terms.numpy(), "maps": maps.numpy()})
    want = _EveryScore()(terms, maps).numpy()
    assert got.shape == (len(SCORE_KINDS), 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
