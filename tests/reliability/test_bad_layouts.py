"""The corpus, continued: messy data set folders, unusable output folders, devices and settings.

Each case builds its input under ``tmp_path`` and returns the ``piade`` arguments and the texts the
single error line must hold. See docs/reliability.md.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.data.writers import write_class_folders, write_folder, write_mvtec
from tests.reliability.badfiles import FAST, good_folder, write
from tests.reliability.conftest import Cli
from tests.reliability.test_bad_inputs import assert_error

Built = tuple[list[object], list[str]]  # argv, texts the error line must hold


def _mvtec(tmp: Path) -> Path:
    write_mvtec(tmp / "data", n_train=4)
    return tmp / "data"


def _fit_mvtec(root: Path, tmp: Path, *extra: object) -> list[object]:
    return ["fit", "--data", "mvtec", "--root", root, "--category", "widget", "--epochs", "1",
            *FAST, *extra, "--out", tmp / "run"]  # fmt: skip


def empty_class_folder(tmp: Path) -> Built:
    root = _mvtec(tmp)
    train = root / "widget" / "train" / "good"
    for file in train.iterdir():
        file.unlink()
    return _fit_mvtec(root, tmp), [f"no images found in {train}", "expected files ending in"]


def empty_defect_folder(tmp: Path) -> Built:
    root = _mvtec(tmp)
    (root / "widget" / "test" / "crack").mkdir()
    return _fit_mvtec(root, tmp), [f"no images found in {root / 'widget' / 'test' / 'crack'}"]


def empty_cifar_class_folder(tmp: Path) -> Built:
    root = write_class_folders(tmp / "cifar", {"cat": (3, 2), "dog": (3, 2)})
    (root / "train" / "bird").mkdir()
    argv = ["fit", "--data", "cifar10", "--root", root, "--normal-class", "cat", *FAST,
            "--out", tmp / "run"]  # fmt: skip
    return argv, [f"no images found in {root / 'train' / 'bird'}"]


def missing_mask(tmp: Path) -> Built:
    root = _mvtec(tmp)
    mask = root / "widget" / "ground_truth" / "scratch" / "001_mask.png"
    mask.unlink()
    return _fit_mvtec(root, tmp), [f"has no mask: expected {mask}", "add the mask"]


def wrong_size_mask(tmp: Path) -> Built:
    root = _mvtec(tmp)
    mask = root / "widget" / "ground_truth" / "scratch" / "002_mask.png"
    Image.fromarray(np.zeros((20, 32), dtype=np.uint8)).save(mask)
    return _fit_mvtec(root, tmp), [f"mask {mask} is 32x20 px", "is 32x32 px", "replace the mask"]


def unreadable_mask(tmp: Path) -> Built:
    root = _mvtec(tmp)
    mask = write(root / "widget" / "ground_truth" / "scratch" / "000_mask.png", b"")
    return _fit_mvtec(root, tmp), [f"cannot read mask {mask}", "--on-error skip"]


def folder_mask_missing(tmp: Path) -> Built:
    root = write_folder(tmp / "parts", n_normal=4, n_abnormal=2)
    (root / "masks" / "a1_mask.png").unlink()
    argv = ["fit", "--data", "folder", "--root", root, "--normal-dir", "good", "--abnormal-dir",
            "bad", "--mask-dir", "masks", *FAST, "--out", tmp / "run"]  # fmt: skip
    return argv, [f"abnormal image {root / 'bad' / 'a1.png'} has no mask", "a1_mask.<ext>"]


def unknown_category(tmp: Path) -> Built:
    root = _mvtec(tmp)
    argv = _fit_mvtec(root, tmp)
    argv[argv.index("widget")] = "bottel"
    return argv, ["unknown mvtec ad category 'bottel'", "categories found: widget"]


def missing_root(tmp: Path) -> Built:
    return _fit_mvtec(tmp / "nowhere", tmp), [f"{tmp / 'nowhere'} does not exist"]


def root_is_a_file(tmp: Path) -> Built:
    file = write(tmp / "data.zip", b"PK")
    return _fit_mvtec(file, tmp), [f"{file} is a file, expected a folder"]


def missing_normal_dir(tmp: Path) -> Built:
    argv = ["fit", "--data", "folder", "--normal-dir", tmp / "good", *FAST, "--out", tmp / "run"]
    return argv, [f"normal_dir {tmp / 'good'} does not exist", "pass the folder"]


def too_few_images(tmp: Path) -> Built:
    folder = good_folder(tmp / "good", n=2)
    argv = ["fit", "--data", "folder", "--normal-dir", folder, "--normal-split", "0", *FAST,
            "--out", tmp / "run"]  # fmt: skip
    return argv, ["need at least 3 training images (got 2)"]


def out_holds_another_run(tmp: Path) -> Built:
    write(tmp / "run" / "run.json", b"{}")
    return _fit_mvtec(tmp / "nowhere", tmp), [
        f"{tmp / 'run'} already holds a piade run",
        "--resume",
        "another --out",
    ]


def out_is_a_file(tmp: Path) -> Built:
    write(tmp / "run", b"")
    return _fit_mvtec(tmp / "nowhere", tmp), [f"--out {tmp / 'run'} is a file"]


def out_under_a_file(tmp: Path) -> Built:
    write(tmp / "file", b"")
    argv = _fit_mvtec(tmp / "nowhere", tmp)
    argv[-1] = tmp / "file" / "run"
    return argv, [f"--out {tmp / 'file' / 'run'} cannot be created: {tmp / 'file'} is a file"]


def export_out_is_a_folder(tmp: Path) -> Built:
    (tmp / "dir").mkdir()
    return ["export", tmp / "model", "--out", tmp / "dir"], [f"--out {tmp / 'dir'} is a folder"]


def bad_device_name(tmp: Path) -> Built:
    argv = _fit_mvtec(tmp / "nowhere", tmp, "--device", "gpu")
    return argv, ["--device 'gpu' is not a device", "cpu"]


def config_unknown_key(tmp: Path) -> Built:
    config = write(tmp / "fit.yaml", b"epoch: 3\n")
    argv = ["fit", "--config", config, "--out", tmp / "run"]
    return argv, [f"--config {config}: unknown setting(s) epoch", "valid: "]


def config_not_a_mapping(tmp: Path) -> Built:
    config = write(tmp / "fit.yaml", b"- epochs\n- 3\n")
    argv = ["fit", "--config", config, "--out", tmp / "run"]
    return argv, [f"--config {config}: expected a mapping"]


def config_not_utf8(tmp: Path) -> Built:
    config = write(tmp / "fit.yaml", bytes(range(128, 256)) * 4)
    argv = ["fit", "--config", config, "--out", tmp / "run"]
    return argv, [f"--config {config}: not a UTF-8 YAML file"]


def huge_image_size(tmp: Path) -> Built:
    return _fit_mvtec(tmp / "nowhere", tmp, "--image-size", "100000"), [
        "image_size must be between 32 and 1024 px",
        "100000",
    ]


def zero_image_size(tmp: Path) -> Built:
    return _fit_mvtec(tmp / "nowhere", tmp, "--image-size", "0"), [
        "image_size must be between 32 and 1024 px"
    ]


def resume_without_a_run(tmp: Path) -> Built:
    (tmp / "run").mkdir()
    argv = ["fit", "--resume", "--out", tmp / "run"]
    return argv, [f"no run to resume in {tmp / 'run'}", "run.json", "drop --resume"]


CASES: dict[str, Callable[[Path], Built]] = {
    f.__name__: f
    for f in (
        empty_class_folder,
        empty_defect_folder,
        empty_cifar_class_folder,
        missing_mask,
        wrong_size_mask,
        unreadable_mask,
        folder_mask_missing,
        unknown_category,
        missing_root,
        root_is_a_file,
        missing_normal_dir,
        too_few_images,
        out_holds_another_run,
        out_is_a_file,
        out_under_a_file,
        export_out_is_a_folder,
        bad_device_name,
        config_unknown_key,
        config_not_a_mapping,
        config_not_utf8,
        huge_image_size,
        zero_image_size,
        resume_without_a_run,
    )
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layout_output_and_setting_errors(case: str, tmp_path: Path, cli: Cli) -> None:
    argv, expected = CASES[case](tmp_path)
    run = cli(argv)
    assert_error(run, str(argv[0]), *expected)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_wrong_size_mask_is_skipped_with_a_warning_when_asked(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    argv, _ = wrong_size_mask(tmp_path)
    root = argv[argv.index("--root") + 1]
    run = cli(["evaluate", model_file, "--data", "mvtec", "--root", root, "--category", "widget",
               "--device", "cpu", "--on-error", "skip", "--out", tmp_path / "eval"])  # fmt: skip
    assert run.code == 0, run.err
    assert "piade evaluate: warning: skipping: mask" in run.err and "002_mask.png" in run.err
    assert "n_anomalous  2" in run.out  # 3 defect images, one left out


def test_evaluate_writes_a_non_utf8_name_escaped(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    root = _mvtec(tmp_path)
    good = root / "widget" / "test" / "good"
    os.rename(good / "000.png", os.fsdecode(os.path.join(os.fsencode(good), b"caf\xe9.png")))
    run = cli(["evaluate", model_file, "--data", "mvtec", "--root", root, "--category", "widget",
               "--device", "cpu", "--out", tmp_path / "eval"])  # fmt: skip
    assert run.code == 0, run.err
    scores = (tmp_path / "eval" / "scores.csv").read_text(encoding="utf-8")
    assert "caf\\xe9.png" in scores


@pytest.mark.parametrize("verb", ["fit", "evaluate", "predict", "benchmark"])
def test_unavailable_device_is_refused_before_any_data(
    verb: str, model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    missing = tmp_path / "no_data_here"
    data = ["--data", "mvtec", "--root", missing, "--category", "widget"]
    argv: dict[str, list[object]] = {
        "fit": ["fit", *data],
        "evaluate": ["evaluate", model_file, *data],
        "predict": ["predict", model_file, missing],
        "benchmark": ["benchmark", "mvtec", "--root", missing],
    }
    run = cli([*argv[verb], "--device", "cuda:99", "--out", tmp_path / "out"])
    assert_error(run, verb, "--device cuda:99", "--device cpu")
    assert "does not exist" not in run.err  # the device was checked first


@pytest.fixture
def unwritable(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot create files in (a read-only folder; /sys when root)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    if not os.access(folder, os.W_OK):
        yield folder
        folder.chmod(0o700)
        return
    try:  # root ignores permissions: use sysfs, where nothing can be created
        os.mkdir("/sys/piade-probe")
    except OSError as error:
        if error.errno in (errno.EPERM, errno.EACCES, errno.EROFS):
            yield Path("/sys")
            return
    else:
        os.rmdir("/sys/piade-probe")
    pytest.skip("no unwritable folder available to this user")


@pytest.mark.parametrize("verb", ["fit", "evaluate", "predict", "export"])
def test_unwritable_output_is_refused_before_any_work(
    verb: str, unwritable: Path, model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    out = unwritable / "out"
    data = ["--data", "mvtec", "--root", tmp_path / "no_data_here", "--category", "widget"]
    argv: dict[str, list[object]] = {
        "fit": ["fit", *data, "--out", out],
        "evaluate": ["evaluate", model_file, *data, "--out", out],
        "predict": ["predict", model_file, tmp_path, "--out", out],
        "export": ["export", model_file, "--out", out / "model.onnx"],
    }
    run = cli(argv[verb])
    assert_error(run, verb, f"--out {out} cannot be written", "choose a folder you can write to")


def test_a_refused_command_creates_no_output_folder(tmp_path: Path, cli: Cli) -> None:
    out = tmp_path / "new" / "run"
    data = ["--data", "mvtec", "--root", tmp_path / "no_data_here", "--category", "widget"]
    run = cli(["fit", *data, "--image-size", "100000", "--out", out])
    assert_error(run, "fit", "image_size must be between 32 and 1024 px")
    assert not (tmp_path / "new").exists(), "the refused fit left an empty --out folder"
    assert list(tmp_path.iterdir()) == [], "the write probe was left behind"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_full_disk_while_predicting_keeps_one_clear_line(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    folder = good_folder(tmp_path / "in", n=3)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink("/dev/full", out / "scores.csv")  # every write to it fails with ENOSPC
    run = cli(["predict", model_file, folder, "--no-maps", "--out", out])
    assert_error(run, "predict", "no space left on device", "free some space")


def test_a_folder_with_images_is_not_a_model(tmp_path: Path, cli: Cli) -> None:
    folder = good_folder(tmp_path / "images")
    shutil.copy(folder / "good0.png", folder / "model.safetensors")
    run = cli(["predict", folder / "model.safetensors", folder, "--out", tmp_path / "out"])
    assert_error(run, "predict", "not a readable piade model file", "model.safetensors")


def test_a_cuda_index_this_machine_lacks_is_refused(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with one GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    run = cli(_fit_mvtec(tmp_path / "nowhere", tmp_path, "--device", "cuda:7"))
    assert_error(
        run, "fit", "--device cuda:7: this machine has 1 cuda device(s) (cuda:0 to cuda:0)"
    )


def test_a_category_without_ground_truth_loads_with_labels_only(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    root = _mvtec(tmp_path)
    shutil.rmtree(root / "widget" / "ground_truth")
    run = cli(["evaluate", model_file, "--data", "mvtec", "--root", root, "--category", "widget",
               "--device", "cpu", "--out", tmp_path / "eval"])  # fmt: skip
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("piade evaluate: warning")]
    assert len(warnings) == 1 and "has no ground_truth/ folder" in warnings[0], run.err
    assert "pixel metrics (pixel AUROC, AUPRO) are skipped" in warnings[0]
    import json

    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["image_auroc"] is not None and metrics["pixel_auroc"] is None
