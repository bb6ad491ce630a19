"""An optional disk cache of decoded and resized images, one ``.npy`` file per image and size.

An entry's name is a hash of the file's identity (absolute path, size in bytes, modification time),
the kind (image or mask), the output size and the resize method, so editing or replacing a file, or
asking for another size, simply misses the cache. Entries are written atomically; a damaged entry is
ignored and rewritten. Sources that are not files (CIFAR-10 pickle ids) are never cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from piade.data.decode import RESIZE_METHOD
from piade.errors import DataError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


class DiskCache:
    """Decoded images under ``folder`` (created when missing)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DataError(
                f"cannot create the cache folder {self.folder}: {error}; pass a "
                "writable cache_dir or none"
            ) from error

    def entry(self, path: str, kind: str, size: int, crop: float = 1.0) -> Path | None:
        """The cache file for ``path`` at ``size`` (after a central ``crop``), or None when
        ``path`` is not a file."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        identity = (
            f"{CACHE_FORMAT}|{RESIZE_METHOD}|{kind}|{size}{f'|crop={crop!r}' if crop < 1 else ''}|"
            f"{os.path.abspath(path)}|"
            f"{stat.st_size}|{stat.st_mtime_ns}"
        )
        raw = identity.encode("utf-8", "surrogateescape")  # file names need not be UTF-8
        digest = hashlib.sha1(raw, usedforsecurity=False).hexdigest()
        return self.folder / digest[:2] / f"{digest}.npy"

    def fetch(
        self,
        path: str,
        kind: str,
        size: int,
        shape: tuple[int, ...],
        compute: Callable[[], torch.Tensor],
        *,
        crop: float = 1.0,
    ) -> torch.Tensor:
        """The cached uint8 tensor of ``shape`` for ``path``, else ``compute()`` (then stored)."""
        entry = self.entry(path, kind, size, crop)
        if entry is None:
            return compute()
        cached = self._load(entry, shape)
        if cached is not None:
            return cached
        value = compute()
        self._store(entry, value)
        return value

    @staticmethod
    def _load(entry: Path, shape: tuple[int, ...]) -> torch.Tensor | None:
        try:
            array = np.load(entry, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.debug("ignoring damaged cache entry %s: %s", entry, error)
            return None
        if array.dtype != np.uint8 or array.shape != shape:
            log.debug("ignoring cache entry %s of shape %s", entry, array.shape)
            return None
        return torch.from_numpy(array)

    @staticmethod
    def _store(entry: Path, value: torch.Tensor) -> None:
        temporary = entry.with_name(f"{entry.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            entry.parent.mkdir(exist_ok=True)
            with temporary.open("wb") as handle:
                np.save(handle, value.numpy(), allow_pickle=False)
            os.replace(temporary, entry)
        except OSError as error:  # a full or read-only disk only costs speed
            log.warning("cannot write the cache entry %s: %s", entry, error)
            temporary.unlink(missing_ok=True)
