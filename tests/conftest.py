"""Shared test fixtures: every test runs offline with its own empty torch hub cache."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every run, so CI cannot turn red by the luck of a
# draw; `HYPOTHESIS_PROFILE=explore make pytest` draws fresh ones to hunt for new failures.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to open a network connection."""


@pytest.fixture(autouse=True)
def offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[object]]:
    """Block every socket connection and point ``TORCH_HOME`` at an empty temporary folder.

    Yields the list of addresses that code tried to reach, so a test can assert it stayed empty.
    """
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object, *args: object, **kwargs: object) -> None:
        attempts.append(address)
        raise NetworkBlocked(f"tests run offline; a connection to {address!r} was attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))  # type: ignore[arg-type]
    torch_home = tmp_path_factory.mktemp("torch_home")
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    yield attempts


@pytest.fixture
def torch_hub_checkpoints() -> Path:
    """The ``checkpoints`` folder of the (temporary) torch hub cache."""
    path = Path(torch.hub.get_dir()) / "checkpoints"
    path.mkdir(parents=True, exist_ok=True)
    return path
