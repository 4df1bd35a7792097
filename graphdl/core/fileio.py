"""Atomic file writes: everything graphdl writes (models, checkpoints, pictures, npz outputs)
goes through :func:`write_atomic`, so a reader or a crash sees the old file or the new one,
never a torn one."""
from __future__ import annotations

import os
import tempfile
from typing import IO, Callable

from .errors import GraphError


def write_atomic(path: str, data: bytes | Callable[[IO[bytes]], None]) -> None:
    """Writes ``data`` (bytes, or a function writing to a binary file) to a temporary file in
    ``path``'s folder, fsyncs it, renames it over ``path`` and fsyncs the folder."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GraphError(f"{path}: directory {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
