"""Multi-process training with DistributedDataParallel: 2 CPU processes, gloo backend."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from tests.fakes import TINY_BACKBONE, normal_set

from piade import ModelConfig
from piade.model import build_model
from piade.runtime import seed_everything
from piade.train.config import TrainConfig
from piade.train.run import fit


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    torch.set_num_threads(1)
    config = TrainConfig(
        epochs=2, batch_size=8, encoder_weights=None, perceptual_weights=None, device="cpu", seed=1
    )
    result = fit(
        normal_set(20),
        Path(out) / "run",
        model_config=ModelConfig(image_size=32, backbone=TINY_BACKBONE),
        train_config=config,
    )
    torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")


def test_two_processes_end_with_identical_weights(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    # rank 0 alone recomputes batch-norm statistics for the model file (precise BN): every weight
    # and every other buffer is the same in both processes
    statistics = ("running_mean", "running_var", "num_batches_tracked")
    assert all(torch.equal(a[k], b[k]) for k in a if not k.endswith(statistics))
    seed_everything(1)  # the initial weights fit() starts from
    initial = build_model(ModelConfig(image_size=32, backbone=TINY_BACKBONE)).state_dict()
    assert not torch.equal(initial["decoder.layers.0.weight"], a["decoder.layers.0.weight"])
    assert (tmp_path / "run" / "model.safetensors").is_file()  # written by rank 0 only
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    # 18 training images: 9 per rank in batches of 4, 4 and a dropped 1; both ranks are counted.
    assert len(lines) == 2 and '"images": 16' in lines[0]
