"""The corpus of bad image files: each stops with one clear line, is skipped with a warning when the
user asked for skipping, or — for unusual but valid images — is scored. See docs/reliability.md."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from tests.reliability.badfiles import (
    FAST,
    encode,
    good_folder,
    non_utf8_name,
    pixels,
    png,
    png_header_only,
    truncated,
    unusual_images,
    write,
)
from tests.reliability.conftest import Cli, Run

FIX = "--on-error skip"


def assert_error(run: Run, verb: str, *expected: str) -> None:
    """Exit code 2 and exactly one ``piade VERB: error:`` line, the last, holding ``expected``."""
    assert run.code == 2, run.err
    assert run.last_line.startswith(f"piade {verb}: error: "), run.err
    assert len(run.error_lines()) == 1 and "Traceback" not in run.err
    for text in expected:
        assert text.lower() in run.last_line.lower(), (text, run.last_line)


def fit_argv(folder: Path, tmp: Path, *extra: object) -> list[object]:
    return [
        "fit", "--data", "folder", "--normal-dir", folder, "--epochs", "1",
        *FAST, *extra, "--out", tmp / "run",
    ]  # fmt: skip


def _symlink(target: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        link = folder / "link.png"
        os.symlink(target, link)
        return link

    return build


def _file(name: str, data: bytes) -> Callable[[Path], Path]:
    return lambda folder: write(folder / name, data)


BROKEN: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero_byte_file": (_file("empty.png", b""), "the file is empty (0 bytes)"),
    "truncated_png": (_file("cut.png", truncated(png(32))), "truncated"),
    "truncated_jpeg": (
        _file("cut.jpg", truncated(encode(Image.fromarray(pixels(32)), "JPEG"))),
        "truncated",
    ),
    "text_file_named_png": (
        _file("notes.png", b"these are my notes, not a picture\n"),
        "not an image file pillow can identify",
    ),
    "decompression_bomb_20000px": (
        _file("bomb.png", png_header_only(20_000, 20_000)),
        "decompression bomb",
    ),
    "decompression_bomb_warning_10000px": (
        _file("big.png", png_header_only(10_000, 10_000)),
        "images this large are refused",
    ),
    "dangling_symlink": (_symlink("nowhere.png"), "no such file"),
    "symlink_loop": (_symlink("link.png"), "too many levels of symbolic links"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unreadable_file_stops_fit_naming_it(case: str, tmp_path: Path, cli: Cli) -> None:
    build, what = BROKEN[case]
    folder = good_folder(tmp_path / "images")
    bad = build(folder)
    run = cli(fit_argv(folder, tmp_path))
    assert_error(run, "fit", f"cannot read image {bad}", what, FIX)
    assert not (tmp_path / "run" / "run.json").exists()  # stopped before any training


def test_non_utf8_file_name_is_shown_escaped(tmp_path: Path, cli: Cli) -> None:
    folder = good_folder(tmp_path / "images")
    non_utf8_name(folder, truncated(png(32)))
    run = cli(fit_argv(folder, tmp_path))
    assert_error(run, "fit", "caf\\xe9-\\xff.png", "truncated", FIX)


def test_skip_leaves_the_bad_file_out_with_a_warning(tmp_path: Path, cli: Cli) -> None:
    folder = good_folder(tmp_path / "images", n=6)
    bad = write(folder / "cut.png", truncated(png(32)))
    run = cli(fit_argv(folder, tmp_path, "--on-error", "skip"))
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if line.startswith("piade fit: warning: ")]
    assert len(warnings) == 1 and f"cannot read image {bad}" in warnings[0]
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_everything_skipped_is_an_error(tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "images"
    for i in range(3):
        write(folder / f"junk{i}.png", b"junk")
    run = cli(fit_argv(folder, tmp_path, "--on-error", "skip", "--normal-split", "0"))
    assert_error(
        run, "fit", "no readable", "all 3 were skipped", "check the files named in the warnings"
    )
    assert run.err.count("piade fit: warning: skipping: cannot read image") == 3


def _predict(cli: Cli, model: Path, inputs: list[object], out: Path, *extra: object) -> Run:
    return cli(["predict", model, *inputs, "--device", "cpu", *extra, "--out", out])


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "scores.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("case", sorted(unusual_images()))
def test_unusual_but_valid_images_are_scored(
    case: str, model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    name, data = unusual_images()[case]
    image = write(tmp_path / "in" / name, data)
    run = _predict(cli, model_file, [image], tmp_path / "out")
    assert run.code == 0 and "scored 1 image(s)" in run.out, run.err
    (row,) = _rows(tmp_path / "out")
    assert row["error"] == "" and float(row["score"]) > 0
    with Image.open(image) as source, Image.open(row["map"]) as overlay:
        assert overlay.size == source.size  # the map has the image's own resolution


def test_mixed_sizes_are_scored_with_maps_at_their_own_size(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    sizes = [(8, 8), (300, 7), (64, 40), (33, 95)]
    for i, (width, height) in enumerate(sizes):
        write(tmp_path / "in" / f"{i}.png", encode(Image.fromarray(pixels(width, height=height))))
    run = _predict(cli, model_file, [tmp_path / "in"], tmp_path / "out")
    assert run.code == 0, run.err
    rows = _rows(tmp_path / "out")
    assert [r["error"] for r in rows] == [""] * 4
    for row, size in zip(rows, sizes, strict=True):
        with Image.open(row["map"]) as overlay:
            assert overlay.size == size


def test_non_utf8_name_is_scored_and_written_escaped(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    non_utf8_name(tmp_path / "in", png(16))
    run = _predict(cli, model_file, [tmp_path / "in"], tmp_path / "out")
    assert run.code == 0, run.err
    (row,) = _rows(tmp_path / "out")
    assert row["path"].endswith("caf\\xe9-\\xff.png") and row["error"] == ""


def test_predict_records_a_bad_file_and_scores_the_others(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    folder = good_folder(tmp_path / "in", n=3)
    bad = write(folder / "zz_cut.png", truncated(png(32)))
    run = _predict(cli, model_file, [folder], tmp_path / "out", "--no-maps")
    assert run.code == 0 and "scored 3 image(s)" in run.out and "1 unreadable" in run.out
    assert f"WARNING piade.inference.predict: cannot read image {bad}" in run.err
    rows = _rows(tmp_path / "out")
    assert [bool(r["error"]) for r in rows] == [False, False, False, True]
    assert "truncated" in rows[-1]["error"] and rows[-1]["score"] == ""


def test_predict_skips_hidden_files_and_folder_link_loops(
    model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    folder = good_folder(tmp_path / "in", n=2)
    write(folder / "._good0.png", b"\x00\x05\x16\x07 AppleDouble")  # macOS resource fork
    good_folder(folder / ".ipynb_checkpoints", n=2)
    write(folder / "sub" / "deep.png", png(16))
    os.symlink("..", folder / "sub" / "up")  # a folder loop: in/sub/up -> in
    run = _predict(cli, model_file, [folder], tmp_path / "out", "--no-maps")
    assert run.code == 0, run.err
    names = sorted(Path(r["path"]).name for r in _rows(tmp_path / "out"))
    assert names == ["deep.png", "good0.png", "good1.png"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: [tmp / "nothing_here"], "does not exist"),
        (lambda tmp: [(tmp / "empty").mkdir() or tmp / "empty"], "no image files"),
    ],
    ids=["missing_input", "empty_folder"],
)
def test_predict_input_errors(
    make: Callable[[Path], list[object]],
    expected: str,
    model_file: Path,
    tmp_path: Path,
    cli: Cli,
) -> None:
    run = _predict(cli, model_file, make(tmp_path), tmp_path / "out")
    assert_error(run, "predict", expected, str(tmp_path))


def test_predict_can_stop_at_the_first_bad_file(model_file: Path, tmp_path: Path, cli: Cli) -> None:
    folder = good_folder(tmp_path / "in", n=2)
    bad = write(folder / "zz.png", b"")
    run = _predict(cli, model_file, [folder], tmp_path / "out", "--on-error", "raise")
    assert_error(run, "predict", f"cannot read image {bad}", "empty", FIX)
    assert len(_rows(tmp_path / "out")) == 0  # the batch holding it was never written


def test_disk_cache_handles_non_utf8_names(tmp_path: Path) -> None:
    from piade.data import build_datasets

    folder = good_folder(tmp_path / "images", n=4)
    odd = non_utf8_name(folder, png(16, seed=9))
    for _ in range(2):  # a cache miss, then a hit
        train, test = build_datasets(
            "folder", None, None, image_size=8, normal_dir=folder, normal_split=0.25,
            cache_dir=tmp_path / "cache",
        )  # fmt: skip
        assert str(odd) in {s.source for s in (*train.samples, *test.samples)}
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 5
