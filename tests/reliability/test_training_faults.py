"""Training faults: a non-finite loss or weights, a full disk, and ``kill -9`` in a real process.

Every fault keeps the last good checkpoint, and ``piade fit --resume`` then ends with weights
identical to an uninterrupted run's. See docs/reliability.md.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from tests.fakes import write_mvtec
from tests.reliability.badfiles import FAST
from tests.reliability.conftest import Cli
from tests.reliability.test_bad_inputs import assert_error

import piade.train.run
from piade.train.checkpoint import load_checkpoint

EPOCHS = 5


def fit_argv(root: Path, out: Path, *extra: object) -> list[str]:
    argv = ["fit", "--data", "mvtec", "--root", root, "--category", "widget", "--epochs", EPOCHS,
            "--checkpoint-every", "1", *FAST, *extra, "--out", out]  # fmt: skip
    return [str(a) for a in argv]


def metrics(out: Path) -> list[dict[str, Any]]:
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mvtec(tmp_path_factory.mktemp("data"), n_train=12, n_good=2, n_bad=2)


def _poison_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int, *, loss: float) -> None:
    """Make the loss of every batch of ``epoch`` equal ``loss`` (NaN or inf)."""
    real = piade.train.run.train_epoch
    calls = {"n": 0}

    def poisoned(model: Any, criterion: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == epoch:

            def bad(target: torch.Tensor, output: torch.Tensor, *kept: Any) -> Any:
                terms = criterion(target, output, *kept)
                return terms._replace(total=terms.total * loss)

            return real(model, bad, *args, **kwargs)
        return real(model, criterion, *args, **kwargs)

    monkeypatch.setattr(piade.train.run, "train_epoch", poisoned)


@pytest.mark.parametrize("loss", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(
    loss: float, small_root: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    _poison_epoch(monkeypatch, 3, loss=loss)
    run = cli(fit_argv(small_root, out))
    assert_error(
        run,
        "fit",
        "the loss became non-finite in epoch 3",
        f"the last good checkpoint (epoch 2) is kept in {out / 'checkpoint.pt'}",
        f"piade fit --resume --out {out} --lr 0.0001",
    )
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["epoch"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert [m["epoch"] for m in metrics(out)] == [1, 2]
    assert not (out / "model.safetensors").exists()
    monkeypatch.undo()
    resumed = cli(["fit", "--resume", "--out", out, "--lr", "0.0001"])
    assert resumed.code == 0, resumed.err
    assert [m["epoch"] for m in metrics(out)] == list(range(1, EPOCHS + 1))
    assert json.loads((out / "run.json").read_text())["train"]["lr"] == 0.0001


def test_non_finite_weights_are_never_checkpointed(
    small_root: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = piade.train.run.train_epoch
    calls = {"n": 0}

    def break_weights(model: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        result = real(model, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # a finite loss, but the last step overflowed a weight
            next(model.parameters()).data.fill_(float("inf"))
        return result

    monkeypatch.setattr(piade.train.run, "train_epoch", break_weights)
    out = tmp_path / "run"
    run = cli(fit_argv(small_root, out))
    assert_error(run, "fit", "became non-finite in epoch 2", "checkpoint (epoch 1) is kept")
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1


def test_full_disk_while_checkpointing_keeps_the_previous_one(
    small_root: Path, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = torch.save
    calls = {"n": 0}

    def disk_fills_up(obj: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:  # the third checkpoint: part of it is written, then the disk is full
            handle.write(b"\x00" * 1000)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(handle.name))
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(piade.train.checkpoint.torch, "save", disk_fills_up)
    out = tmp_path / "run"
    run = cli(fit_argv(small_root, out))
    assert_error(run, "fit", "no space left on device", "free some space", "--resume")
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    assert not list(out.glob(".checkpoint.pt.tmp-*"))  # the partial file was removed
    monkeypatch.undo()
    assert cli(["fit", "--resume", "--out", out]).code == 0
    assert cli(fit_argv(small_root, tmp_path / "straight")).code == 0
    assert same_weights(out, tmp_path / "straight")


# --- kill -9 in a real process ---------------------------------------------------------------

DIE_WHILE_CHECKPOINTING = """
import os, signal, sys
import torch
from piade.cli import main
real, calls = torch.save, [0]
def save(obj, handle, *args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:  # the third checkpoint: half written, then the process dies
        handle.write(b"half a checkpoint")
        handle.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    real(obj, handle, *args, **kwargs)
torch.save = save
sys.exit(main(sys.argv[1:]))
"""


DIE_MID_EPOCH = """
import os, signal, sys
import piade.train.run
from piade.cli import main
real, epochs = piade.train.run.train_epoch, [0]
def train_epoch(*args, **kwargs):
    epochs[0] += 1
    batches = [0]
    def on_batch():
        batches[0] += 1
        if epochs[0] == 3 and batches[0] == 2:  # the second batch of epoch 3 has just been applied
            os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, on_batch=on_batch, **kwargs)
piade.train.run.train_epoch = train_epoch
sys.exit(main(sys.argv[1:]))
"""


def _env(tmp: Path) -> dict[str, str]:
    return os.environ | {
        "OMP_NUM_THREADS": "1",  # the same in every process, so results are bit-identical
        "TORCH_HOME": str(tmp / "torch_home"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


def _start(args: list[str], tmp: Path, *, script: str | None = None) -> subprocess.Popen[str]:
    head = [sys.executable, "-c", script] if script else [sys.executable, "-m", "piade"]
    return subprocess.Popen(
        [*head, *args], env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> None:
    _, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-2000:]


@pytest.fixture(scope="module")
def kill_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A data set whose epochs last a few tenths of a second, and an uninterrupted run on it,
    trained in a background process while the tests that kill runs use the other core."""
    base = tmp_path_factory.mktemp("kill")
    root = write_mvtec(base / "data", n_train=64, n_good=2, n_bad=2)
    straight = _start(fit_argv(root, base / "straight"), base)
    yield {"root": root, "straight": base / "straight", "process": straight}
    if straight.poll() is None:
        straight.kill()


def _straight(kill_data: dict[str, Any]) -> Path:
    _finish(kill_data["process"])
    return kill_data["straight"]


def _checkpoint_epoch(out: Path) -> int:
    path = out / "checkpoint.pt"
    return int(load_checkpoint(path)["epoch"]) if path.exists() else 0


def test_kill_9_mid_epoch_then_resume_equals_an_uninterrupted_run(
    kill_data: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    # SIGKILL from inside, at a known point in the middle of epoch 3: no timing race under load
    process = _start(fit_argv(kill_data["root"], out), tmp_path, script=DIE_MID_EPOCH)
    _, err = process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL, err[-2000:]
    assert _checkpoint_epoch(out) == 2 and len(metrics(out)) == 2  # died inside epoch 3
    assert not (out / "model.safetensors").exists()

    _finish(_start(["fit", "--resume", "--out", str(out)], tmp_path))
    straight = _straight(kill_data)
    assert same_weights(out, straight)
    assert [m["loss"] for m in metrics(out)] == [m["loss"] for m in metrics(straight)]


def test_death_while_writing_a_checkpoint_never_corrupts_it(
    kill_data: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    process = _start(fit_argv(kill_data["root"], out), tmp_path, script=DIE_WHILE_CHECKPOINTING)
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL
    (stale,) = out.glob(".checkpoint.pt.tmp-*")  # the half-written file, never renamed
    assert stale.read_bytes() == b"half a checkpoint"
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2  # the previous one, intact

    _finish(_start(["fit", "--resume", "--out", str(out)], tmp_path))
    assert not stale.exists()  # resume cleans up what the dead process left
    assert same_weights(out, _straight(kill_data))
