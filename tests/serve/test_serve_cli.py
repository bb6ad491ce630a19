"""``piade serve`` refuses bad settings with one line and exit code 2, before opening a port."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tests.serve.conftest import TOKEN

from piade.cli import main
from piade.serve import server


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a refused command (argparse prints the usage above it)."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse refuses a flag's value by exiting
        code = exit_.code  # type: ignore[assignment]
    assert code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("piade serve: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.fixture(autouse=True)
def never_listen(monkeypatch: pytest.MonkeyPatch) -> None:
    def listen(*args: object, **kwargs: object) -> None:
        raise AssertionError("a refused command must not start the server")

    monkeypatch.setattr("uvicorn.run", listen)


def test_bad_flags_and_files_are_named(
    served_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(served_model)
    assert "--port" in refused(["serve", model, "--port", "0"], capsys)
    assert "--port" in refused(["serve", model, "--port", "70000"], capsys)
    assert "--max-image-mb" in refused(["serve", model, "--max-image-mb", "nan"], capsys)
    assert "--batch-window-ms" in refused(["serve", model, "--batch-window-ms", "-1"], capsys)
    assert "--workers" in refused(["serve", model, "--workers", "0"], capsys)
    line = refused(["serve", str(tmp_path / "none.safetensors")], capsys)
    assert "none.safetensors does not exist" in line
    line = refused(["serve", model, "--token-file", str(tmp_path / "missing")], capsys)
    assert "--token-file" in line and "cannot read it" in line
    (tmp_path / "short").write_text("abc\n")
    assert "at least 16 characters" in refused(
        ["serve", model, "--token-file", str(tmp_path / "short")], capsys
    )
    (tmp_path / "binary").write_bytes(b"\xff\xfe" * 20)
    assert "not a UTF-8" in refused(
        ["serve", model, "--token-file", str(tmp_path / "binary")], capsys
    )


def test_the_token_file_is_read_without_its_newline(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    assert server.read_token(tmp_path / "token") == TOKEN


def test_without_the_serve_extra_it_says_what_to_install(
    served_model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a)
    )
    line = refused(["serve", str(served_model)], capsys)
    assert "needs fastapi" in line and "pip install 'piade[serve]'" in line


def test_valid_settings_reach_uvicorn(
    served_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(kwargs, app=app))
    (tmp_path / "token").write_text(TOKEN)
    argv = ["serve", str(served_model), "--token-file", str(tmp_path / "token"), "--device", "cpu"]
    assert main(argv) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000  # safe by default
    assert type(seen["app"]).__name__ == "FastAPI"


def test_several_workers_share_the_cores_and_each_builds_the_app(
    served_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(kwargs, app=app))
    monkeypatch.setenv(server.SETTINGS_ENV, "")  # so that it is removed again after the test
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert main(["serve", str(served_model), "--workers", "2", "--device", "cpu"]) == 0
    assert seen["app"] == "piade.serve.server:app_from_environment" and seen["factory"] is True
    assert seen["workers"] == 2
    import json
    import os

    spec = json.loads(os.environ[server.SETTINGS_ENV])
    assert spec["threads"] == 4 and spec["model"] == str(served_model)
    import torch

    threads = torch.get_num_threads()
    try:
        assert type(server.app_from_environment()).__name__ == "FastAPI"  # what each worker does
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(threads)
