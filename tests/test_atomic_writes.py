"""Atomic writes: every file graphdl writes goes through graphdl.core.fileio.write_atomic (a source
scan proves no other code path opens a file for writing), and a write that fails half way leaves
the old file intact and no temporary file behind."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import numpy as np
import pytest

import graphdl as gd
from graphdl.tools.cli import main
from graphdl.core.fileio import write_atomic

ROOT = Path(__file__).resolve().parent.parent
#: Methods that write a file on any object, and functions of numpy/onnx/tempfile that do
#: (np.save and np.savez may write to an in-memory buffer named ``buf...``).
WRITERS = {"write_text", "write_bytes", "tofile"}
MODULE_WRITERS = {"save", "savez", "savez_compressed", "save_model", "save_tensor", "mkstemp",
                  "NamedTemporaryFile"}
MODULES = {"np", "numpy", "onnx", "tempfile"}


def _file_writes(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open":
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and set(str(mode.value)) & set("wax+"):
                found.append((node.lineno, f"open(..., {mode.value!r})"))
        elif isinstance(f, ast.Attribute) and (f.attr in WRITERS or (
                f.attr in MODULE_WRITERS and isinstance(f.value, ast.Name)
                and f.value.id in MODULES)):
            first = node.args[0] if node.args else None
            in_memory = isinstance(first, ast.Name) and "buf" in first.id
            if not in_memory:
                found.append((node.lineno, f".{f.attr}(...)"))
    return found


def test_no_code_writes_files_except_through_write_atomic():
    offenders = []
    for folder in ("graphdl", "passes"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.name == "fileio.py":
                continue
            for line, what in _file_writes(ast.parse(path.read_text(), str(path))):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert not offenders, "write through graphdl.core.fileio.write_atomic:\n" + "\n".join(offenders)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old contents")

    def half_then_fail(f):
        f.write(b"new contents, half writ")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(str(path), half_then_fail)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["model.onnx"]
    write_atomic(str(path), b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.onnx"]


def test_write_replaces_a_symlink_instead_of_writing_through_it(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep me")
    (tmp_path / "d").mkdir()
    link = tmp_path / "d" / "out.onnx"
    os.symlink(outside, link)
    write_atomic(str(link), b"model")
    assert outside.read_bytes() == b"keep me"  # the link's target is untouched
    assert not link.is_symlink() and link.read_bytes() == b"model"


def test_cli_run_output_is_complete_npz(tmp_path):
    b = gd.GraphBuilder("m")
    x = b.input("x", [3])
    model = tmp_path / "m.onnx"
    model.write_bytes(gd.to_onnx(b.build({"y": gd.tanh(x)})).SerializeToString())
    feed = tmp_path / "x.npy"
    np.save(feed, np.array([0.0, 1.0, -2.0], np.float32))
    out = tmp_path / "out.npz"
    assert main(["run", str(model), "--feed", f"x={feed}", "-o", str(out)]) == 0
    np.testing.assert_allclose(np.load(out)["y"], np.tanh([0.0, 1.0, -2.0]), rtol=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "out.npz", "x.npy"]


def test_the_scan_finds_direct_writes():
    src = "open(p, 'w')\nopen(p, mode='ab')\nnp.save(p, a)\nnp.savez(buf, a=a)\np.write_text('x')\n"
    assert [line for line, _ in _file_writes(ast.parse(src))] == [1, 2, 3, 5]
