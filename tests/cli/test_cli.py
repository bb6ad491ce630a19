"""The command line, run in-process from an argument list."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from piade import __version__
from piade.cli import main


def test_info_reports_size_and_cost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--image-size", "32", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["config"]["image_size"] == 32
    assert report["feature_map_side"] == 1
    assert report["parameters"] > 10_000_000
    assert 0.01 < report["forward_gflops_per_image"] < 1.0


def test_bad_weights_file_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pth"
    assert main(["info", "--image-size", "32", "--encoder-weights", str(missing)]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("piade info: error: ") and "missing.pth" in last
    assert err.count(": error: ") == 1 and "Traceback" not in err


def test_bad_setting_names_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--image-size", "16"]) == 2
    assert "image_size must be between 32 and 1024 px (got 16)" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        main(["--debug", "info", "--encoder-weights", str(tmp_path / "missing.pth")])


def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "piade", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"piade {__version__}"


def test_every_call_logs_to_the_current_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.data.writers import write_folder

    write_folder(tmp_path, n_normal=2, n_abnormal=0)
    argv = ["fit", "--data", "folder", "--root", str(tmp_path), "--normal-dir", "good"]
    argv += ["--normal-split", "0", "--device", "cpu", "--out", str(tmp_path / "run")]
    argv += ["--encoder-weights", "none", "--perceptual-weights", "none"]  # checked before decoding
    first = io.StringIO()
    with contextlib.redirect_stderr(first):
        assert main(argv) == 2
    assert main(argv) == 2  # a second in-process run must not log into the first one's stream
    for err in (first.getvalue(), capsys.readouterr().err):
        assert "INFO piade.data.loading: decoded 2 folder good train images" in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("piade fit: error: need at least 3 training images (got 2)")


def test_fit_warns_when_other_work_keeps_the_cores_busy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from piade import runtime

    monkeypatch.setattr(runtime, "busy_cores", lambda interval=0.15: (1.0, 2))
    monkeypatch.setattr(runtime.torch, "get_num_threads", lambda: 2)
    argv = ["fit", "--data", "mvtec", "--root", str(tmp_path / "nowhere"), "--category", "bottle"]
    assert main([*argv, "--device", "cpu", "--out", str(tmp_path / "run")]) == 2  # no such root
    err = capsys.readouterr().err
    assert "WARNING" in err and "1.0 of the 2 CPU cores" in err and "OMP_NUM_THREADS=1" in err
    monkeypatch.setattr(runtime, "busy_cores", lambda interval=0.15: (0.1, 2))
    assert main([*argv, "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    assert "WARNING" not in capsys.readouterr().err
