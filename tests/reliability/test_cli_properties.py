"""A property-based guard on the command line: whatever values the numeric and path flags of
``fit``, ``evaluate``, ``predict``, ``export`` and ``serve`` get, the command succeeds or exits with code 2 and
exactly one ``piade VERB: error:`` line, never a traceback. See docs/reliability.md.

Every draw of ``fit`` and ``evaluate`` points the data at a folder that does not hold it and
``export`` at an existing folder, so no draw trains or exports anything: the flags are validated
before data or models are used. ``predict`` scores one real image with a tiny model, so its flags
are used for real whenever they are valid; ``serve`` builds its app for real and stops where
uvicorn would start listening.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from tests.fakes import normal_image

from piade.cli import main
from piade.cli.parsers import build_parsers

VERBS = ("fit", "evaluate", "predict", "export", "serve")
NOT_NUMBERS = ("", "abc", "1,5")
NUMBERS = ("0", "-1", "-0", "0.5", "1", "3", "1e308", "-1e308", "99999999999999999999",
           "nan", "inf", "-inf", "", "abc", "1,5")  # fmt: skip
PATHS = ("missing", "text_file", "binary_file", "empty_folder", "empty_file", "empty_string")
NUMERIC_TYPES = {int, float}
GUARD = settings(
    max_examples=40,
    deadline=timedelta(seconds=10),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _flags(verb: str) -> tuple[list[str], list[str]]:
    """The verb's (numeric, path) option strings, read from the parser itself."""
    _, verbs = build_parsers()
    numeric, paths = [], []
    for action in verbs[verb]._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        kind = getattr(action.type, "func", action.type)  # functools.partial(positive_int, ...)
        name = action.option_strings[0]
        if kind in NUMERIC_TYPES or getattr(kind, "__name__", "") in (
            "auto_or_number",
            "positive_int",
            "check_batch_size",
            "positive_number",
            "number_between",
            "port_number",
        ):
            numeric.append(name)
        elif kind is Path and name != "--out":
            paths.append(name)
    return numeric, paths


FLAGS = {verb: _flags(verb) for verb in VERBS}


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path | str]:
    (tmp_path / "text.txt").write_text("just some text\n")
    (tmp_path / "binary.bin").write_bytes(bytes(range(128, 256)) * 8)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "inputs").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(normal_image(rng, 40)).save(tmp_path / "inputs" / "part.png")
    return {
        "missing": tmp_path / "nowhere" / "x",
        "text_file": tmp_path / "text.txt",
        "binary_file": tmp_path / "binary.bin",
        "empty_folder": tmp_path / "empty",
        "empty_file": tmp_path / "empty.bin",
        "empty_string": "",
    }


def _base(verb: str, model: Path, tmp: Path) -> list[str]:
    nowhere = str(tmp / "no_data")
    data = ["--data", "mvtec", "--root", nowhere, "--category", "widget"]
    if verb == "fit":
        return ["fit", *data, "--device", "cpu", "--encoder-weights", "none",
                "--perceptual-weights", "none", "--out", str(tmp / "run")]  # fmt: skip
    if verb == "evaluate":
        return ["evaluate", str(model), *data, "--device", "cpu", "--out", str(tmp / "eval")]
    if verb == "predict":
        image = tmp / "inputs"
        return ["predict", str(model), str(image), "--device", "cpu", "--out", str(tmp / "pred")]
    if verb == "serve":
        return ["serve", str(model), "--device", "cpu"]  # uvicorn.run is replaced: nothing listens
    return ["export", str(model), "--out", str(tmp / "empty")]  # a folder: refused, nothing written


@st.composite
def command(draw: st.DrawFn, verb: str) -> list[tuple[str, str]]:
    """Up to three of the verb's numeric and path flags with awkward values."""
    numeric, paths = FLAGS[verb]
    chosen = draw(st.lists(st.sampled_from(numeric + paths), min_size=1, max_size=3, unique=True))
    return [
        (flag, draw(st.sampled_from(NUMBERS)) if flag in numeric else draw(st.sampled_from(PATHS)))
        for flag in chosen
    ]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("verb", VERBS)
def test_any_flag_value_succeeds_or_is_one_error_line(
    verb: str,
    model_file: Path,
    places: dict[str, Path | str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(places["empty_folder"])  # an empty path means "here": keep it in tmp_path
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: None)  # serve: up to listening
    assert FLAGS[verb][0], f"{verb} has no numeric flags to draw"

    @GUARD
    @given(drawn=command(verb))
    def check(drawn: list[tuple[str, str]]) -> None:
        argv = _base(verb, model_file, tmp_path)
        for flag, value in drawn:
            argv += [flag, str(places.get(value, value))]
        code, err = _run(argv, capsys)
        assert "Traceback" not in err, (argv, err)
        assert code in (0, 2), (argv, code, err)
        if any(value in NOT_NUMBERS for flag, value in drawn if flag in FLAGS[verb][0]):
            assert code == 2, (argv, "a number flag took a non-number", err)
        if code == 2:
            errors = [line for line in err.splitlines() if line.startswith(f"piade {verb}: error:")]
            assert len(errors) == 1, (argv, err)

    check()
