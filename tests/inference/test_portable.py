"""An exported .onnx file predicts like its model file, with ONNX Runtime and without torch."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.fakes import TINY_BACKBONE, add_defect, normal_image, normal_set

from piade import ModelConfig
from piade.cli.main import main
from piade.data.decode import resize_image
from piade.inference.detector import load
from piade.inference.export import export_onnx
from piade.inference.portable import OnnxDetector, OnnxFileError
from piade.inference.predict import predict
from piade.train.config import TrainConfig
from piade.train.run import fit

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny detector (32 px, 2 epochs), its .onnx file, and a folder of images to score: RGB
    and grey, square and not, larger and smaller than the model, one with a defect, one unreadable."""
    base = tmp_path_factory.mktemp("portable")
    config = TrainConfig(
        epochs=2, batch_size=8, encoder_weights=None, perceptual_weights=None, device="cpu"
    )
    fit(
        normal_set(16),
        base / "run",
        model_config=ModelConfig(image_size=32, backbone=TINY_BACKBONE),
        train_config=config,
    )
    export_onnx(load(base / "run"), base / "model.onnx")
    rng = np.random.default_rng(3)
    images = base / "images"
    images.mkdir()
    Image.fromarray(normal_image(rng, 32)).save(images / "same_size.png")
    Image.fromarray(normal_image(rng, 90)[:, :70]).save(images / "tall.png")
    Image.fromarray(add_defect(normal_image(rng, 64), rng)[0]).save(images / "defect.png")
    Image.fromarray(normal_image(rng, 20)[..., 0]).save(images / "grey_small.png")
    Image.fromarray(normal_image(rng, 48)).save(images / "photo.jpg", quality=95)
    (images / "broken.png").write_bytes(b"not a png")
    return {"base": base, "run": base / "run", "onnx": base / "model.onnx", "images": images}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_onnx_predict_matches_the_model_file(exported: dict[str, Path], tmp_path: Path) -> None:
    torch_summary = predict(load(exported["run"]), [exported["images"]], tmp_path / "torch")
    onnx_summary = predict(
        OnnxDetector.load(exported["onnx"]), [exported["images"]], tmp_path / "onnx"
    )
    assert (onnx_summary.scored, onnx_summary.failed) == (torch_summary.scored, 1) == (5, 1)
    assert onnx_summary.anomalous == torch_summary.anomalous
    expected, found = _rows(torch_summary.csv_path), _rows(onnx_summary.csv_path)
    assert list(found[0]) == list(expected[0])  # the same columns, length_1 and length_2 included
    assert [r["path"] for r in found] == [r["path"] for r in expected]
    for want, got in zip(expected, found, strict=True):
        assert (got["label"], got["decoded"], bool(got["error"])) == (
            want["label"],
            want["decoded"],
            bool(want["error"]),
        )
        if want["error"]:
            continue
        for name in ("score", "mse", "perceptual", "ssim", "length_1", "length_2"):
            assert float(got[name]) == pytest.approx(float(want[name]), rel=1e-3, abs=1e-5)
        torch_map = np.asarray(Image.open(want["map"]), dtype=int)
        onnx_map = np.asarray(Image.open(got["map"]), dtype=int)
        original = Image.open(want["path"]).size
        assert torch_map.shape == onnx_map.shape == (original[1], original[0], 3)
        assert np.abs(torch_map - onnx_map).max() <= 3  # colour levels; maps are for viewing


def test_onnx_resize_matches_the_torch_resize() -> None:
    rng = np.random.default_rng(0)
    detector = OnnxDetector.__new__(OnnxDetector)
    detector.center_crop = 1.0
    for shape, size in (((256, 256), 120), ((90, 70), 32), ((20, 20), 32), ((32, 32), 32)):
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        detector.image_size = size
        want = resize_image(image, size).numpy().astype(int)
        got = detector.resize(image).astype(int)
        assert got.shape == want.shape == (3, size, size) and got.dtype == int
        assert np.abs(got - want).max() <= 1 and (got != want).mean() < 1e-3


def test_onnx_predict_runs_without_torch(exported: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    probe = (
        "import sys\n"
        "from piade.cli.main import main\n"
        f"code = main(['predict', {str(exported['onnx'])!r}, {str(exported['images'])!r}, "
        f"'--out', {str(out)!r}])\n"
        "print(code, sorted(m for m in ('torch', 'torchvision', 'timm') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []", done.stdout + done.stderr
    assert len(_rows(out / "scores.csv")) == 6 and len(list((out / "maps").glob("*.png"))) == 5


def test_an_onnx_file_without_piade_metadata_is_refused(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    bare = onnx.load(str(exported["onnx"]))
    onnx.helper.set_model_props(bare, {})
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    with pytest.raises(OnnxFileError, match="export the model file again"):
        OnnxDetector.load(tmp_path / "bare.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    with pytest.raises(OnnxFileError, match=r"junk\.onnx is not an ONNX model"):
        OnnxDetector.load(tmp_path / "junk.onnx")
    with pytest.raises(OnnxFileError, match="does not exist"):
        OnnxDetector.load(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--compile"], "--compile applies to PyTorch"),
        (["--precision", "bf16"], "--precision bf16 applies to PyTorch"),
        (["--device", "cuda"], "--device cuda: a .onnx model runs with ONNX Runtime on the CPU"),
    ],
)
def test_torch_only_flags_with_an_onnx_model_give_one_error(
    exported: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    out = tmp_path / "out"
    args = ["predict", str(exported["onnx"]), str(exported["images"]), "--out", str(out), *flags]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("piade predict: error: ") and message in err[0]
    assert not out.exists()


def test_onnx_score_refuses_images_of_another_shape(exported: dict[str, Path]) -> None:
    detector = OnnxDetector.load(exported["onnx"])
    with pytest.raises(ValueError, match=r"expected float32 images \(B, 3, 32, 32\)"):
        detector.score(np.zeros((1, 3, 16, 16), dtype=np.float32))
    result = detector.score(np.full((2, 3, 32, 32), 0.5, dtype=np.float32))
    assert result["score"].shape == (2,) and result["lengths"].shape == (2, 2)
    assert result["label"].dtype == np.int64 and result["anomaly_map"].shape == (2, 32, 32)
