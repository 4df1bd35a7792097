"""Tensors stored outside an ONNX file, read and written only as plain files inside the model's
own folder.

Stricter than the onnx package and ONNX Runtime (CVE-2022-25882, CVE-2024-27318, CVE-2025-51480
are this class of bug): a location that is absolute, climbs with '..', is or passes through a
symbolic link, is a hard link (st_nlink > 1: the same bytes may live anywhere), is not a regular
file (devices, FIFOs), or whose offset and length do not lie inside the file is refused. The same
rules apply when saving, so graphdl never writes outside the target folder.
"""
from __future__ import annotations

import os
import stat
from typing import Iterator

import onnx
from onnx import TensorProto

from ..core.errors import OnnxError
from ..core.fileio import write_atomic
from .checks import check_tensor


class ExternalDataError(OnnxError):
    """External data at a location graphdl refuses, or whose size disagrees with its tensor."""


def safe_location(base: str, location: object, what: str, must_exist: bool = True) -> str:
    """The path of ``location`` inside ``base`` after checking every rule of the module
    docstring; ``must_exist=False`` (saving) allows a final file that does not exist yet."""
    if not isinstance(location, str) or not location or "\0" in location:
        raise ExternalDataError(f"{what}: external data location {location!r} is not a file name")
    parts = location.replace("\\", "/").split("/")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in parts[0]:
        raise ExternalDataError(f"{what}: external data location {location!r} is an absolute "
                                "path; graphdl only uses files inside the model's folder")
    if ".." in parts or "" in parts:
        raise ExternalDataError(f"{what}: external data location {location!r} leaves or "
                                "escapes the model's folder ('..' or an empty component)")
    path = base
    for k, part in enumerate(parts):
        path = os.path.join(path, part)
        last = k == len(parts) - 1
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if last and not must_exist:
                return path
            raise ExternalDataError(f"{what}: external data file {location!r} does not exist "
                                    f"in {base}") from None
        _check_entry(st, location, part, last, what)
    return path


def _check_entry(st: os.stat_result, location: str, part: str, last: bool, what: str) -> None:
    if stat.S_ISLNK(st.st_mode):
        raise ExternalDataError(f"{what}: external data location {location!r} goes through "
                                f"the symbolic link {part!r}; graphdl refuses symbolic links")
    if not last:
        if not stat.S_ISDIR(st.st_mode):
            raise ExternalDataError(f"{what}: {part!r} in {location!r} is not a folder")
        return
    if not stat.S_ISREG(st.st_mode):
        raise ExternalDataError(f"{what}: external data location {location!r} is not a regular "
                                "file (a device, FIFO or folder)")
    if st.st_nlink > 1:
        raise ExternalDataError(f"{what}: external data file {location!r} has {st.st_nlink} "
                                "hard links; graphdl refuses hard-linked files")


def _info(t: TensorProto, what: str) -> tuple[str, int, int | None]:
    entries = {e.key: e.value for e in t.external_data}
    try:
        offset = int(entries.get("offset", "0"))
        length = int(entries["length"]) if "length" in entries else None
    except ValueError:
        raise ExternalDataError(f"{what}: external data offset/length are not integers "
                                f"({entries})") from None
    if offset < 0 or (length is not None and length < 0):
        raise ExternalDataError(f"{what}: negative external data offset {offset} or length "
                                f"{length}")
    return entries.get("location", ""), offset, length


def _open_beneath(base: str, location: str, what: str) -> int:
    """A read-only descriptor of ``location``, opened one component at a time relative to the
    previous folder's descriptor, never following a link and never blocking (FIFOs)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    parts = location.replace("\\", "/").split("/")
    fd = os.open(base, flags | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags | getattr(os, "O_DIRECTORY", 0), dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags | getattr(os, "O_NONBLOCK", 0), dir_fd=fd)
    except OSError as e:
        raise ExternalDataError(f"{what}: cannot open external data {location!r} inside "
                                f"{base} without following links ({e.strerror})") from None
    finally:
        os.close(fd)


def read_external(t: TensorProto, base: str, what: str, max_bytes: int) -> None:
    """Loads ``t``'s external bytes into ``t.raw_data`` after every check; the file is opened
    without following links and re-checked on the open descriptor."""
    size = check_tensor(t, what, max_bytes)
    location, offset, length = _info(t, what)
    if length is not None and length != size:
        raise ExternalDataError(f"{what}: external data length {length} disagrees with dims "
                                f"{list(t.dims)} ({size} bytes)")
    safe_location(base, location, what)  # clear messages for every rule
    fd = _open_beneath(base, location, what)  # and no link swapped in since
    try:
        st = os.fstat(fd)
        _check_entry(st, location, location, True, what)
        if offset + size > st.st_size:
            raise ExternalDataError(f"{what}: external data {location!r} at offset {offset} "
                                    f"needs {size} bytes, but the file has {st.st_size}")
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    t.raw_data = data
    t.data_location = TensorProto.DEFAULT
    del t.external_data[:]


def save_model(model: onnx.ModelProto, path: str, location: str | None = None,
               threshold: int = 1024) -> None:
    """Writes ``model`` to ``path`` atomically; with ``location``, tensors of at least
    ``threshold`` bytes go to that file beside the model (checked by the rules above, so never
    outside the model's folder, never through a link)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    base = os.path.dirname(os.path.abspath(path))
    tensors = list(all_tensors(model.graph))
    if any(t.data_location == TensorProto.EXTERNAL for t in tensors):
        raise ExternalDataError(f"{path}: the model still references external data; load it "
                                "first (graphdl.from_onnx reads it)")
    if location is not None:
        target = safe_location(base, location, path, must_exist=False)
        blob = _externalise(tensors, location, threshold)
        write_atomic(target, blob)
    write_atomic(path, model.SerializeToString())


def _externalise(tensors: list[TensorProto], location: str, threshold: int) -> bytes:
    chunks, offset = [], 0
    for t in tensors:
        if not t.HasField("raw_data") or len(t.raw_data) < threshold:
            continue
        data = t.raw_data
        pad = -offset % 64  # aligned offsets, as onnx writes them
        chunks.append(b"\0" * pad + data)
        offset += pad
        for key, value in (("location", location), ("offset", str(offset)),
                           ("length", str(len(data)))):
            t.external_data.add(key=key, value=value)
        t.data_location = TensorProto.EXTERNAL
        t.ClearField("raw_data")
        offset += len(data)
    return b"".join(chunks)


def all_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    """Every tensor a graph stores: its initializers and its nodes' tensor attributes, in
    subgraphs too (what may hold external data)."""
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from all_tensors(attr.g)
            for sub in attr.graphs:
                yield from all_tensors(sub)
