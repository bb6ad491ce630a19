"""``piade benchmark`` end to end on tiny fake data: tables, resume, split runs and merging."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from tests.data.writers import write_cifar_pickle, write_coil, write_folder
from tests.fakes import TINY_BACKBONE, write_mvtec

from piade.benchmark import runner
from piade.benchmark.page import render_page
from piade.cli import main
from piade.config import SCORE_KINDS
from piade.inference.detector import load
from piade.metrics import image_auroc

FAST = [
    "--image-size", "32", "--batch-size", "8", "--epochs", "1", "--baseline-epochs", "1", "--device", "cpu",
    "--encoder-weights", "none", "--perceptual-weights", "none", "--backbone", TINY_BACKBONE,
]  # fmt: skip


@pytest.fixture(scope="module")
def mvtec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mvtec")
    for i, name in enumerate(("bottle", "wood")):
        write_mvtec(root, name, n_train=12, n_good=4, n_bad=4, seed=i)
    return root


@pytest.fixture(scope="module")
def split_runs(mvtec: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The MVTec suite split over two "machines" (one class each), then merged."""
    base = tmp_path_factory.mktemp("bench")
    outs = {}
    for cls in ("bottle", "wood"):
        outs[cls] = base / cls
        args = ["benchmark", "mvtec", "--root", str(mvtec), "--classes", cls]
        code = main(
            [*args, "--methods", "piade,ocsvm", "--ablation", *FAST, "--out", str(outs[cls])]
        )
        assert code == 0
    outs["merged"] = base / "merged"
    assert (
        main(
            [
                "benchmark",
                "merge",
                str(outs["bottle"]),
                str(outs["wood"]),
                "--out",
                str(outs["merged"]),
            ]
        )
        == 0
    )
    return outs


def test_each_run_writes_metrics_cost_and_settings(split_runs: dict[str, Path]) -> None:
    result = json.loads((split_runs["bottle"] / "runs/piade/bottle/seed0/result.json").read_text())
    metrics = result["metrics"]
    assert 0 <= metrics["image_auroc"] <= 1 and 0 <= metrics["pixel_auroc"] <= 1
    assert metrics["n_normal"] == 4 and metrics["n_anomalous"] == 4
    subset = metrics["authors_subset"]  # the authors' 15 + 15 images: here, all 4 + 4
    assert subset["image_auroc"] == metrics["image_auroc"]
    assert subset["groups"] == {"good": 4, "square": 4}
    cost = result["cost"]
    assert cost["epochs"] == 1 and cost["n_train"] == 12 and cost["device"] == "cpu"
    assert cost["train_seconds"] > 0 and cost["train_images_per_s"] > 0
    assert cost["peak_rss_mb"] > 50
    assert result["settings"]["encoder_weights"] is None and result["seed"] == 0
    assert result["command"].startswith("piade benchmark mvtec")
    by_score = result["fitted"]["image_auroc_by_score"]  # beyond the paper, from the same pass
    assert set(by_score) == set(SCORE_KINDS)
    assert by_score["loss"] == pytest.approx(metrics["image_auroc"])  # the table's, the paper's
    svm = json.loads((split_runs["bottle"] / "runs/ocsvm/bottle/seed0/result.json").read_text())
    assert svm["metrics"]["pixel_auroc"] is None and svm["fitted"]["nu"] == 0.1


def test_each_run_writes_its_test_images_scores(split_runs: dict[str, Path]) -> None:
    """scores.csv reproduces the run's AUROCs, every score kind's, and is copied by merge."""
    run = split_runs["merged"] / "runs/piade/bottle/seed0"
    result = json.loads((run / "result.json").read_text())
    with (run / "scores.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {r["group"] for r in rows} >= {"good"}
    assert all(Path(r["path"]).is_file() for r in rows)
    labels = np.array([int(r["label"]) for r in rows])
    assert labels.sum() == 4

    def auroc(column: str) -> float:
        return image_auroc(labels, np.array([float(r[column]) for r in rows]))

    assert auroc("score") == pytest.approx(result["metrics"]["image_auroc"], abs=1e-9)
    for kind, value in result["fitted"]["image_auroc_by_score"].items():
        assert auroc(f"score:{kind}") == pytest.approx(value, abs=1e-9)
    assert {"mse", "perceptual", "ssim", "decoded", "length_1", "length_2"} <= set(rows[0])
    with (split_runs["merged"] / "runs/ocsvm/wood/seed0/scores.csv").open(newline="") as handle:
        svm = list(csv.DictReader(handle))
    assert list(svm[0]) == ["path", "group", "label", "score"] and len(svm) == 8


def _script(name: str) -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks" / name


def _module(name: str) -> ModuleType:
    """``benchmarks/NAME`` imported as a module (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(Path(name).stem, _script(name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(name: str, *args: str) -> tuple[dict, str]:
    """Run ``benchmarks/NAME`` with ``args``; its first printed line (JSON) and all it printed."""
    done = subprocess.run(
        [sys.executable, str(_script(name)), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[0]), done.stdout


def test_score_combinations_script_reads_the_runs_scores(split_runs: dict[str, Path]) -> None:
    record, _ = _run_script("score_combinations.py", str(split_runs["merged"]))
    assert sorted(record["classes"]) == ["bottle/seed0", "wood/seed0"]
    tables = json.loads((split_runs["merged"] / "results.json").read_text())
    by_class = {r["class"]: r for r in tables["scores"]}
    for cls in ("bottle", "wood"):  # the stored kinds give the benchmark's own AUROCs
        for kind in SCORE_KINDS:
            assert record["classes"][f"{cls}/seed0"][kind] == pytest.approx(by_class[cls][kind])
    assert 0 <= record["mean"]["loss-balanced x map-max"] <= 1


def test_merged_table_has_both_classes_in_the_papers_shape(split_runs: dict[str, Path]) -> None:
    tables = json.loads((split_runs["merged"] / "results.json").read_text())
    assert tables["classes"] == ["bottle", "wood"]
    assert tables["methods"] == ["piade", "piade-1v", "ocsvm"]
    assert len(tables["runs"]) == 6
    rows = tables["image_auroc"]["rows"]
    assert [r["paper piade"] for r in rows] == [0.968, 0.978]
    page = (split_runs["merged"] / "results.md").read_text()
    assert "| **Mean** |" in page and "Pixel-level" in page and "## Cost" in page
    assert [r["class"] for r in tables["ablation"]] == ["bottle", "wood", "Mean"]
    assert (split_runs["merged"] / "ablation.png").is_file()
    scores = tables["scores"]  # every image score of the two-vector model, beside the paper's
    assert [r["class"] for r in scores] == ["bottle", "wood", "Mean"]
    assert [r["loss"] for r in scores[:2]] == pytest.approx([r["piade"] for r in rows])
    assert "Image score (beyond the paper)" in page and "`loss-balanced`" in page
    csv_lines = (split_runs["merged"] / "results.csv").read_text().splitlines()
    assert csv_lines[0] == "class,piade,piade-1v,ocsvm,paper piade"
    assert len(csv_lines) == 4


def test_finished_classes_are_not_retrained(
    split_runs: dict[str, Path], mvtec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "run_method", fail)
    args = ["benchmark", "mvtec", "--root", str(mvtec), "--classes", "bottle", "--methods"]
    out = split_runs["bottle"]
    assert main([*args, "piade,ocsvm", "--ablation", *FAST, "--out", str(out)]) == 0


def test_an_interrupted_piade_run_resumes_from_its_checkpoint(
    split_runs: dict[str, Path], mvtec: Path
) -> None:
    out = split_runs["wood"]
    result = out / "runs/piade/wood/seed0/result.json"
    before = json.loads(result.read_text())
    result.unlink()  # as if the process died after training, before the result was written
    args = ["benchmark", "mvtec", "--root", str(mvtec), "--classes", "wood", "--methods", "piade"]
    assert main([*args, *FAST, "--out", str(out)]) == 0
    after = json.loads(result.read_text())
    assert after["fitted"]["resumed"] is True
    assert after["metrics"] == before["metrics"]  # the same trained weights, scored again


def test_other_settings_in_the_same_directory_are_refused(
    split_runs: dict[str, Path], mvtec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fast = [*FAST, "--epochs", "2"]
    args = ["benchmark", "mvtec", "--root", str(mvtec), "--classes", "wood", *fast]
    assert main([*args, "--out", str(split_runs["wood"])]) == 2
    err = capsys.readouterr().err
    assert "other settings" in err and "epochs 1 vs 2" in err


def _benchmark_with(split_runs: dict[str, Path], folder: Path, **settings: object) -> Path:
    """``folder`` holding the wood benchmark's record with ``settings`` changed (None: removed,
    as in a record written before that setting existed)."""
    folder.mkdir(exist_ok=True)
    record = json.loads((split_runs["wood"] / "benchmark.json").read_text())
    for name, value in settings.items():
        if value is None:
            record["settings"].pop(name)
        else:
            record["settings"][name] = value
    (folder / "benchmark.json").write_text(json.dumps(record))
    return folder


def _settings(benchmark: Path) -> dict[str, object]:
    settings: dict[str, object] = json.loads((benchmark / "benchmark.json").read_text())["settings"]
    return settings


def _merge(*inputs: Path, out: Path) -> int:
    return main(["benchmark", "merge", *map(str, inputs), "--out", str(out)])


def test_merging_different_benchmarks_is_refused(
    split_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _benchmark_with(split_runs, tmp_path / "other", image_size=64)
    assert _merge(split_runs["wood"], other, out=tmp_path / "m") == 2
    assert "different benchmarks" in capsys.readouterr().err


def test_a_benchmark_recorded_before_a_setting_existed_still_merges(
    split_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """benchmark.json files written before --perceptual-depth ran at its default, 4."""
    assert _settings(split_runs["wood"])["perceptual_depth"] == 4
    older = _benchmark_with(split_runs, tmp_path / "older", perceptual_depth=None)
    assert _merge(older, split_runs["bottle"], out=tmp_path / "m") == 0
    deeper = _benchmark_with(split_runs, tmp_path / "deeper", perceptual_depth=6)
    assert _merge(deeper, split_runs["bottle"], out=tmp_path / "n") == 2
    assert "perceptual_depth 6 vs 4" in capsys.readouterr().err


def test_a_benchmark_recorded_before_the_loss_units_existed_ran_in_the_design_units(
    split_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs from before --loss-convention trained in DESIGN.md's units, the default then."""
    assert _settings(split_runs["wood"])["loss_convention"] == "authors"  # today's default
    older = _benchmark_with(split_runs, tmp_path / "older", loss_convention=None)
    assert _merge(older, split_runs["bottle"], out=tmp_path / "m") == 2
    assert "loss_convention 'design' vs 'authors'" in capsys.readouterr().err


def test_unknown_method_and_class_name_the_valid_ones(
    mvtec: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["benchmark", "mvtec", "--root", str(mvtec), "--out", str(tmp_path / "x")]
    assert main([*base, "--methods", "piade,svm"]) == 2
    assert "ocsvm" in capsys.readouterr().err
    assert main([*base, "--classes", "zipper"]) == 2
    err = capsys.readouterr().err
    assert "zipper" in err and "bottle" in err and "wood" in err


def test_cifar10_suite_one_model_per_class(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_pickle(folder, [0] * 10 + [1] * 10 + [2] * 10, [0] * 4 + [1] * 4 + [2] * 4)
    out = tmp_path / "out"
    args = ["benchmark", "cifar10", "--root", str(tmp_path), "--classes", "0,automobile"]
    assert main([*args, "--methods", "kde,ae-l2", *FAST, "--out", str(out)]) == 0
    tables = json.loads((out / "results.json").read_text())
    assert tables["classes"] == ["airplane", "automobile"]
    rows = tables["image_auroc"]["rows"]
    assert rows[0]["paper kde"] == 0.658 and "paper ae-l2" not in rows[0]
    run = json.loads((out / "runs/ae-l2/airplane/seed0/result.json").read_text())
    assert run["metrics"]["n_normal"] == 4 and run["metrics"]["n_anomalous"] == 8
    assert run["cost"]["epochs"] == 1


def test_coil_suite_with_two_seeds(tmp_path: Path) -> None:
    root = write_coil(tmp_path / "coil", n_objects=3, n_poses=10, size=32)
    out = tmp_path / "out"
    args = ["benchmark", "coil100", "--root", str(root), "--methods", "ocsvm", "--seeds", "0,1"]
    assert main([*args, *FAST, "--out", str(out)]) == 0
    tables = json.loads((out / "results.json").read_text())
    assert tables["classes"] == ["obj1", "obj2", "obj3"]
    assert tables["image_auroc"]["rows"][0]["ocsvm seeds"] == [0, 1]
    assert tables["paper"]["means_all_classes"] == {}
    assert tables["authors"] == []  # the authors' evaluation script covers MVTec AD only
    assert all("authors_subset" not in run["metrics"] for run in tables["runs"])


def test_folder_suite_runs_on_the_users_own_folders(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "parts", n_normal=16, n_abnormal=4, size=32)
    out = tmp_path / "out"
    folders = ["--normal-dir", "good", "--abnormal-dir", "bad", "--mask-dir", "masks"]
    args = ["benchmark", "folder", "--root", str(root), *folders, "--methods", "piade,ae-ssim"]
    convention = ["--loss-convention", "authors"]  # piade's loss in the authors' code's units
    schedule = ["--lr-schedule", "cosine"]
    assert main([*args, *FAST, *convention, *schedule, "--out", str(out)]) == 0
    tables = json.loads((out / "results.json").read_text())
    assert tables["classes"] == ["good"]
    assert tables["paper"]["columns"] == {}
    piade = json.loads((out / "runs/piade/good/seed0/result.json").read_text())
    assert piade["settings"]["loss_convention"] == "authors"
    assert load(piade["fitted"]["model_file"]).criterion.convention == "authors"
    assert piade["settings"]["lr_schedule"] == "cosine"
    fit_run = json.loads((out / "runs/piade/good/seed0/fit/run.json").read_text())
    assert fit_run["train"]["lr_schedule"] == "cosine"
    page = render_page([out / "results.json"], base=out, title="t", intro="")
    assert "- `piade`: 32 px, 1 epochs, batch 8, learning rate cosine." in page
    run = json.loads((out / "runs/ae-ssim/good/seed0/result.json").read_text())
    assert run["metrics"]["n_anomalous"] == 4 and run["metrics"]["pixel_auroc"] is not None


def test_complexity_correction_undoes_a_loss_that_follows_the_images_detail() -> None:
    """Anomalies with twice the loss of normal images of the same detail, but less detail: the raw
    loss ranks them below the normal images, the corrected loss above every one of them."""
    import torch

    module = _module("image_scores.py")
    flat, checker = torch.full((1, 3, 16, 16), 0.5), torch.zeros(1, 3, 16, 16)
    checker[..., ::2, ::2] = checker[..., 1::2, 1::2] = 1.0
    detail = module.complexity(torch.cat([flat, checker]))
    assert detail[0] == pytest.approx(0.0, abs=1e-7) and detail[1] > 0.01
    assert module.complexity((torch.cat([flat, checker]) * 255).to(torch.uint8))[1] > 0.01
    rng = np.random.default_rng(0)
    train_c, normal_c, anomalous_c = (rng.uniform(lo, hi, n) for lo, hi, n in
                                      ((0.1, 1.0, 50), (0.5, 1.0, 20), (0.01, 0.05, 20)))  # fmt: skip
    law = lambda c: np.sqrt(c) * np.exp(rng.normal(0, 0.01, c.shape))  # noqa: E731
    test_loss = np.concatenate([law(normal_c), 2 * law(anomalous_c)])
    test_c, labels = np.concatenate([normal_c, anomalous_c]), np.repeat([0, 1], 20)
    corrected, beta = module.complexity_corrected(law(train_c), train_c, test_loss, test_c)
    assert beta == pytest.approx(0.5, abs=0.02)
    assert image_auroc(labels, test_loss) == 0.0 and image_auroc(labels, corrected) == 1.0


def test_the_relative_rule_decodes_vector_2_where_it_is_longer_than_usual() -> None:
    """Vector 2 is always the shorter, but on the anomalies it is longer than on any training
    image: the paper's rule decodes vector 1 everywhere (its loss ranks the anomalies last), the
    relative rule decodes vector 2 for exactly the anomalies (whose vector-2 loss ranks first)."""
    module = _module("image_scores.py")
    rng = np.random.default_rng(0)
    train = {
        "lengths": np.stack([rng.uniform(0.8, 0.9, 30), rng.uniform(0.1, 0.3, 30)], axis=1),
        **{f"{t}:{v}": rng.uniform(0.1, 0.2, 30) for t in ("loss", "mse") for v in ("v1", "v2")},
        "loss:zero": np.full(30, 5.0),
        "mse:zero": np.full(30, 0.5),
    }
    labels = np.repeat([0, 1], 4)
    test = {
        "lengths": np.array([[0.85, 0.2]] * 4 + [[0.85, 0.5]] * 4),
        "loss:v1": np.array([2.0, 2.1, 2.2, 2.3, 1.0, 1.1, 1.2, 1.3]),
        "loss:v2": np.array([0.0, 0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 3.0]),
        "loss:zero": np.zeros(8),
        **{f"mse:{v}": np.zeros(8) for v in ("v1", "v2", "zero")},
    }
    report = module.vector_report(train, test, labels)
    assert report["v1"]["auroc"] == 0.0 and report["relative"]["auroc"] == 1.0
    assert (report["relative"]["not_v1_normal"], report["relative"]["not_v1_anomalous"]) == (0, 4)
    assert report["zero"]["train_loss"] == 5.0 and report["zero"]["train_mse"] == 0.5


def test_image_scores_script_reports_the_complexity_of_the_images(
    split_runs: dict[str, Path], mvtec: Path
) -> None:
    model = split_runs["bottle"] / "runs/piade/bottle/seed0/fit"
    args = ["--data", "mvtec", "--root", str(mvtec), "--category", "bottle"]
    record, printed = _run_script("image_scores.py", str(model), *args)
    assert (record["n_normal"], record["n_anomalous"]) == (4, 4)
    assert set(record["image_auroc"]) == set(SCORE_KINDS)
    c = record["complexity"]
    assert 0 <= c["auroc"] <= 1 and 0 <= c["corrected_loss_auroc"] <= 1
    assert -1 <= c["spearman_with_loss"] <= 1 and np.isfinite(c["beta"])
    assert "image complexity alone" in printed
    v = record["vectors"]  # the tiny models have two vectors
    assert set(v) == {"v1", "v2", "zero", "relative"} and "the vector decoded" in printed
    assert all(0 <= v[k]["auroc"] <= 1 and v[k]["train_mse"] > 0 for k in ("v1", "v2", "zero"))
    assert v["relative"]["not_v1_normal"] + v["relative"]["not_v1_anomalous"] <= 8
    assert 0 <= record["authors_weighting_auroc"] <= 1 and "weighed as the authors" in printed
    subset = record["authors_subset_auroc"]  # 4 + 4 test images: the subset is all of them
    assert set(subset) == {*SCORE_KINDS, "authors' weighting"}
    assert subset["loss"] == pytest.approx(record["image_auroc"]["loss"])
    assert subset["authors' weighting"] == pytest.approx(record["authors_weighting_auroc"])


def test_image_scores_script_reads_the_images_as_the_model_was_trained(
    mvtec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model trained on the central half of each image is scored on that half, as `piade
    evaluate` scores it (the script once read whole images for it and reported chance AUROC)."""
    flags = FAST[:6] + FAST[8:]  # without --baseline-epochs, which fit does not take
    data = ["--data", "mvtec", "--root", str(mvtec), "--category", "bottle"]
    assert main(["fit", *data, *flags, "--center-crop", "0.5", "--out", str(tmp_path / "m")]) == 0
    module = _module("image_scores.py")
    asked = {}

    def datasets(args: object, **kwargs: object) -> None:
        asked.update(kwargs)
        raise KeyboardInterrupt  # enough: the data were asked for

    monkeypatch.setattr(module, "datasets", datasets)
    with pytest.raises(KeyboardInterrupt):
        module.score_all(str(tmp_path / "m"), data, 8)
    assert asked == {"image_size": 32, "center_crop": 0.5}
