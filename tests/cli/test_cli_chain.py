"""The whole command-line chain, in-process: fit → evaluate → predict → export, and its errors."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.fakes import FAST_FIT, write_mvtec

from piade.cli import main

FAST = FAST_FIT


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("chain")
    root = write_mvtec(base / "mvtec", n_train=24, n_good=8, n_bad=8)
    run = base / "run"
    code = main(
        [
            "fit",
            "--data",
            "mvtec",
            "--root",
            str(root),
            "--category",
            "widget",
            "--epochs",
            "8",
            *FAST,
            "--out",
            str(run),
        ]
    )
    assert code == 0
    return {"base": base, "root": root, "run": run}


def test_fit_writes_the_model_and_metrics(chain: dict[str, Path]) -> None:
    assert (chain["run"] / "model.safetensors").is_file()
    lines = (chain["run"] / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 8


def test_evaluate_detects_easy_anomalies(
    chain: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = chain["base"] / "eval"
    assert (
        main(
            [
                "evaluate",
                str(chain["run"]),
                "--data",
                "mvtec",
                "--root",
                str(chain["root"]),
                "--category",
                "widget",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_normal"] == 8 and metrics["n_anomalous"] == 8
    assert metrics["image_auroc"] >= 0.9
    low, high = metrics["image_auroc_interval"]  # DeLong's 95 % interval
    assert 0 <= low <= metrics["image_auroc"] <= high <= 1
    assert metrics["pixel_auroc"] >= 0.8 and metrics["aupro"] is not None
    assert 0 <= metrics["f1_max"] <= 1
    vectors = metrics["vectors"]  # decoded counts and length spread per true class
    for name, n in (("normal", 8), ("anomalous", 8)):
        assert sum(vectors[name]["decoded"].values()) == n
        spread = vectors[name]["lengths"]["vector_1"]
        assert 0 <= spread["min"] <= spread["median"] <= spread["max"] < 1
    assert "Instantiation vectors" in (out / "report.html").read_text()
    groups = {r["group"]: r for r in metrics["groups"]}  # the fake's defect types
    assert groups["good"]["label"] == "normal" and groups["good"]["n"] == 8
    assert sum(r["n"] for r in metrics["groups"] if r["label"] == "anomalous") == 8
    assert all(0 <= r["image_auroc"] <= 1 for r in metrics["groups"] if r["label"] == "anomalous")
    assert "<h2>By group</h2>" in (out / "report.html").read_text()
    for name in (
        "report.html",
        "roc.png",
        "anomaly_maps.png",
        "reconstructions.png",
        "score_histogram.png",
        "vector_lengths.png",
        "scores.csv",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == 16 and all(0 < float(r["length_1"]) < 1 for r in rows)
    printed = capsys.readouterr().out
    assert "image_auroc" in printed
    assert re.search(r"^image_auroc +[0-9.]+  \(95 % interval [0-9.]+-[0-9.]+\)$", printed, re.M)
    assert "image_auroc 95 % interval (DeLong)" in (out / "report.html").read_text()
    assert re.search(r"^  good +normal +\d+/8 flagged$", printed, re.M)
    assert re.search(r"^[0-9.]+ images/s \(16 images read, scored and reported in", printed, re.M)


def test_predict_scores_files_and_keeps_going_past_a_bad_one(
    chain: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    images = chain["base"] / "to_predict"
    images.mkdir()
    for source in sorted((chain["root"] / "widget" / "test").rglob("*.png"))[:5]:
        (images / f"{source.parent.name}_{source.name}").write_bytes(source.read_bytes())
    (images / "broken.png").write_bytes(b"not an image")
    out = chain["base"] / "pred"
    assert (
        main(
            [
                "predict",
                str(chain["run"] / "model.safetensors"),
                str(images),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "scores.csv").open()))
    assert len(rows) == 6
    assert {"path", "score", "normalized_score", "label"} <= set(rows[0])
    broken = next(r for r in rows if r["path"].endswith("broken.png"))
    assert "cannot read image" in broken["error"] and broken["score"] == ""
    good = [r for r in rows if not r["error"]]
    assert all(Path(r["map"]).is_file() for r in good)
    assert len(list((out / "maps").glob("*.png"))) == 5
    for r in good:  # the decoded vector is the longer one (ties: vector 1)
        lengths = [float(r["length_1"]), float(r["length_2"])]
        assert all(0 <= x < 1 for x in lengths)
        assert int(r["decoded"]) == int(lengths[1] > lengths[0] + 1e-5)
    assert re.search(
        r"^[0-9.]+ images/s \(6 images read, scored, written in", capsys.readouterr().out, re.M
    )


def test_predict_can_stop_on_the_first_bad_file(
    chain: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = chain["base"] / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    code = main(
        [
            "predict",
            str(chain["run"]),
            str(bad),
            "--on-error",
            "raise",
            "--out",
            str(chain["base"] / "pred2"),
        ]
    )
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("piade predict: error: ") and "bad.png" in last
    assert err.count(": error: ") == 1


def test_export_checks_onnx_runtime(
    chain: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("onnxscript")
    target = chain["base"] / "model.onnx"
    assert main(["export", str(chain["run"]), "--format", "onnx", "--out", str(target)]) == 0
    assert target.is_file() and "ONNX Runtime matches PyTorch" in capsys.readouterr().out


def test_resume_continues_with_only_out(chain: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [
        "fit",
        "--data",
        "mvtec",
        "--root",
        str(chain["root"]),
        "--category",
        "widget",
        "--epochs",
        "1",
        *FAST,
        "--out",
        str(run),
    ]
    assert main(args) == 0
    assert main(["fit", "--resume", "--epochs", "2", "--out", str(run)]) == 0
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_config_file_sets_defaults_and_flags_win(chain: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "fit.yaml"
    config.write_text(
        f"data: mvtec\nroot: {chain['root']}\ncategory: widget\nepochs: 1\n"
        "batch-size: 8\nencoder_weights: none\nperceptual_weights: none\n"
        "image_size: 48\nlr: 0.0005\nlr-schedule: cosine\n"
    )
    assert (
        main(
            [
                "fit",
                "--config",
                str(config),
                "--image-size",
                "32",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["train"]["lr"] == 0.0005 and run["model"]["image_size"] == 32
    assert run["train"]["lr_schedule"] == "cosine"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["evaluate", "{run}", "--data", "mvtec", "--root", "{root}", "--category", "nope"],
            "nope",
        ),
        (
            [
                "evaluate",
                "{base}/missing",
                "--data",
                "mvtec",
                "--root",
                "{root}",
                "--category",
                "widget",
            ],
            "does not exist",
        ),
        (["fit", "--data", "mvtec", "--root", "{base}/nowhere", "--category", "widget"], "nowhere"),
        (["fit", "--data", "mvtec", "--root", "{root}"], "--category"),
        (
            ["fit", "--data", "mvtec", "--root", "{root}", "--category", "widget", "--epochs", "0"],
            "epochs",
        ),
        (["fit", "--config", "{base}/no.yaml"], "no.yaml"),
        (
            [
                "fit",
                "--data",
                "mvtec",
                "--root",
                "{root}",
                "--category",
                "widget",
                "--device",
                "cuda:7",
            ],
            "cuda",
        ),
    ],
)
def test_errors_are_one_line_with_exit_code_2(
    chain: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    values = {k: str(v) for k, v in chain.items()}
    args = [a.format(**values) for a in argv] + ["--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # INFO progress lines may come before it
    assert last.startswith(f"piade {argv[0]}: error: ") and message in last
    assert err.count(": error: ") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (["--perceptual-weights", "{base}/vgg.pth"], "vgg.pth does not exist"),
        (["--encoder-weights", "imagenet"], "ImageNet weights for resnet18 not found"),
    ],
)
def test_fit_names_missing_weights_before_decoding_the_data(
    chain: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    weights: list[str],
    message: str,
) -> None:
    """Found images, then the weights file is missing: one line, nothing decoded or written."""

    def decode(*args: object) -> None:
        raise AssertionError("the images were decoded before the weights were checked")

    monkeypatch.setattr("piade.data.build._load", decode)
    data = ["--data", "mvtec", "--root", str(chain["root"]), "--category", "widget"]
    flags = [*FAST, "--backbone", "resnet18"]  # later flags win: the one under test is last
    named = [w.format(base=chain["base"]) for w in weights]
    assert main(["fit", *data, *flags, *named, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_every_verb_documents_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("fit", "evaluate", "predict", "export", "demo", "info"):
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        assert exit_info.value.code == 0
        assert "default" in capsys.readouterr().out


@pytest.mark.parametrize(
    "literal", [[], ["--decoder-init", "orthogonal", "--squash-a", "1"]], ids=["default", "literal"]
)
def test_export_of_a_briefly_trained_grey_model(tmp_path: Path, literal: list[str]) -> None:
    """A model trained 3 epochs on grey, non-square MVTec-layout images exports and passes the
    ONNX Runtime check, also with the paper-literal settings, where every vector length is 1.0000
    and the decoded vector is decided by a tie (it once fell differently in ONNX Runtime)."""
    pytest.importorskip("onnxscript")
    root = tmp_path / "grey"
    category = root / "part"
    rng = np.random.default_rng(0)
    for sub in ("train/good", "test/good"):
        (category / sub).mkdir(parents=True)
        for i in range(12 if sub == "train/good" else 3):
            grey = rng.integers(90, 140, (40, 56), dtype=np.uint8)  # (H, W): non-square, mode L
            Image.fromarray(grey, mode="L").save(category / sub / f"{i:03d}.png")
    run = tmp_path / "run"
    fit = ["fit", "--data", "mvtec", "--root", str(root), "--category", "part", "--epochs", "3"]
    assert main([*fit, *FAST, *literal, "--out", str(run)]) == 0
    check = ["--check-images", str(category / "test/good")]
    assert main(["export", str(run), "--out", str(tmp_path / "m.onnx"), *check]) == 0
