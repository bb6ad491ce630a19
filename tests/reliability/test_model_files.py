"""Model files that are safe to load: pickles carrying code are refused without running it, and a
file of another format version, truncated or tampered with is named with the reason.

Library-level checks of the same properties live in tests/inference/test_detector.py; these run the
command line, as a user who downloaded a file would. See docs/reliability.md.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tests.reliability.badfiles import FAST, good_folder
from tests.reliability.conftest import Cli
from tests.reliability.test_bad_inputs import assert_error

from piade.inference.detector import load
from piade.inference.modelfile import ModelFileError


class Payload:
    """Unpickling this creates ``marker``: proof that code in the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _payload_pickle(marker: Path) -> bytes:
    data = pickle.dumps({"model.weight": Payload(marker)}, protocol=4)
    control = marker.with_name("control")
    pickle.loads(pickle.dumps(Payload(control)))
    assert control.exists()
    return data


@pytest.mark.parametrize("name", ["model.safetensors", "model.pt", "weights.bin"])
def test_a_pickle_with_a_code_payload_is_refused_unrun(name: str, tmp_path: Path, cli: Cli) -> None:
    marker = tmp_path / "payload_ran"
    evil = tmp_path / name
    evil.write_bytes(_payload_pickle(marker))
    run = cli(["predict", evil, good_folder(tmp_path / "in"), "--out", tmp_path / "out"])
    assert_error(run, "predict", f"{evil} is a python pickle", "never loads pickles")
    with pytest.raises(ModelFileError, match="never loads pickles"):
        load(evil)
    assert not marker.exists()


def test_a_torch_save_file_with_a_payload_is_refused_unrun(tmp_path: Path, cli: Cli) -> None:
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "model.pt"
    torch.save({"state": Payload(marker)}, evil)  # the zip format of torch.save
    run = cli(["export", evil, "--out", tmp_path / "model.onnx"])
    assert_error(run, "export", f"{evil} is a zip archive", "never loads pickles")
    assert not marker.exists()


def test_a_checkpoint_with_a_payload_is_refused_unrun(tmp_path: Path, cli: Cli) -> None:
    folder = good_folder(tmp_path / "images", n=5)
    out = tmp_path / "run"
    argv = ["fit", "--data", "folder", "--normal-dir", folder, "--epochs", "1", *FAST]
    assert cli([*argv, "--out", out]).code == 0
    marker = tmp_path / "payload_ran"
    torch.save({"format": "piade-checkpoint-1", "model": Payload(marker)}, out / "checkpoint.pt")
    run = cli(["fit", "--resume", "--epochs", "2", "--out", out])
    assert_error(run, "fit", f"{out / 'checkpoint.pt'} holds python objects", "it was not loaded")
    assert not marker.exists()


def test_a_weights_file_with_a_payload_is_refused_unrun(tmp_path: Path, cli: Cli) -> None:
    marker = tmp_path / "payload_ran"
    evil = tmp_path / "resnet18.pth"
    torch.save({"conv1.weight": Payload(marker)}, evil)
    run = cli(["info", "--image-size", "32", "--encoder-weights", evil])
    assert_error(run, "info", f"weights file {evil}", "it was not loaded", "state_dict")
    assert not marker.exists()


def _contents(model_file: Path, **metadata: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and header metadata of a model file, with ``metadata`` changed."""
    tensors = load_file(model_file)
    with safe_open(str(model_file), framework="pt") as handle:
        meta = dict(handle.metadata()) | metadata
    return tensors, meta


def test_another_format_version_is_explained(model_file: Path, tmp_path: Path, cli: Cli) -> None:
    tensors, meta = _contents(model_file, format_version="2", piade_version="9.0")
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata=meta)
    run = cli(["predict", tmp_path / "m.safetensors", tmp_path, "--out", tmp_path / "out"])
    assert_error(
        run,
        "predict",
        "model format version 2 (written by piade 9.0)",
        "this piade reads version 1",
        "use the matching piade version or retrain",
    )


def test_a_truncated_file_is_detected(model_file: Path, tmp_path: Path, cli: Cli) -> None:
    data = model_file.read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[: len(data) * 2 // 3])
    run = cli(["predict", tmp_path / "m.safetensors", tmp_path, "--out", tmp_path / "out"])
    assert_error(run, "predict", "is not a readable piade model file", "truncated", "copy it")


@pytest.mark.parametrize("where", ["tensor", "metadata"])
def test_a_tampered_file_fails_its_checksum(
    where: str, model_file: Path, tmp_path: Path, cli: Cli
) -> None:
    tensors, meta = _contents(model_file)
    if where == "tensor":  # one weight nudged, metadata kept: the checksum no longer matches
        name = next(k for k in sorted(tensors) if k.endswith("weight"))
        tensors[name] = tensors[name] + 1e-3
    else:  # the recorded checksum replaced
        meta["sha256"] = "0" * 64
    save_file(tensors, str(tmp_path / "m.safetensors"), metadata=meta)
    run = cli(["predict", tmp_path / "m.safetensors", tmp_path, "--out", tmp_path / "out"])
    assert_error(run, "predict", "failed its checksum", "copy it again")


def test_a_foreign_safetensors_file_is_named(tmp_path: Path, cli: Cli) -> None:
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "m.safetensors"))
    run = cli(["predict", tmp_path / "m.safetensors", tmp_path, "--out", tmp_path / "out"])
    assert_error(run, "predict", "is a safetensors file but not a piade model file")
