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

# Under pytest-xdist (`make pytest` runs one worker per core, up to four) each worker gets its
# share of the cores, so the workers' torch threads do not fight over them.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    torch.set_num_threads(
        max(1, torch.get_num_threads() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    )


@pytest.fixture(autouse=True)
def idle_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees idle CPU cores: ``piade fit`` and ``piade benchmark`` check whether other
    work keeps the cores busy (0.15 s), and the other test workers would. Tests of that check set
    ``piade.runtime.busy_cores`` themselves."""
    monkeypatch.setattr("piade.runtime.busy_cores", lambda interval=0.15: None)


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to open a network connection."""


LOOPBACK = ("127.0.0.1", "::1", "localhost")
_CONNECT, _CONNECT_EX, _CREATE = (
    socket.socket.connect,
    socket.socket.connect_ex,
    socket.create_connection,
)


@pytest.fixture(autouse=True)
def offline(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[list[object]]:
    """Block every socket connection and point ``TORCH_HOME`` at an empty temporary folder.

    Tests marked ``loopback`` (the server's) may connect to this machine's own loopback address,
    and nowhere else. Yields the list of addresses that code tried to reach, so a test can assert
    it stayed empty.
    """
    attempts: list[object] = []
    loopback = request.node.get_closest_marker("loopback") is not None

    def allowed(address: object) -> bool:
        return loopback and isinstance(address, tuple) and address[0] in LOOPBACK

    def refuse(address: object) -> None:
        attempts.append(address)
        raise NetworkBlocked(f"tests run offline; a connection to {address!r} was attempted")

    def connect(self: socket.socket, address: object) -> None:
        return _CONNECT(self, address) if allowed(address) else refuse(address)  # type: ignore[arg-type]

    def connect_ex(self: socket.socket, address: object) -> int:
        if allowed(address):
            return _CONNECT_EX(self, address)  # type: ignore[arg-type]
        refuse(address)
        return 1

    def create(address: object, *args: object, **kwargs: object) -> socket.socket:
        if allowed(address):
            return _CREATE(address, *args, **kwargs)  # type: ignore[arg-type]
        refuse(address)
        raise AssertionError("unreachable")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create)
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
