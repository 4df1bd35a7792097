"""A path that is not an ONNX model is a GraphError naming the file and, for the common model
formats, what the file is and how to get an ONNX model from it."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import graphdl as gd


def test_missing_file_is_a_graph_error(tmp_path):
    path = tmp_path / "nope.onnx"
    with pytest.raises(gd.OnnxError, match=f"{path}: No such file or directory"):
        gd.from_onnx(str(path))


def test_pytorch_checkpoint_is_named_as_such(tmp_path, capsys):
    torch = pytest.importorskip("torch", reason="needs PyTorch (the reference extra)")
    path = tmp_path / "model.pt"
    torch.save(torch.nn.Linear(2, 3), path)
    with pytest.raises(gd.OnnxError, match="not an ONNX model but a zip archive .a PyTorch "
                                           "checkpoint.*torch.onnx.export"):
        gd.from_onnx(path)
    from graphdl.tools import cli

    assert cli.main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PyTorch checkpoint" in err and "Wire format" not in err


@pytest.mark.parametrize("write,what", [
    (lambda p: p.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2)), "a Python pickle"),
    (lambda p: np.save(p.open("wb"), np.zeros(3)), "a NumPy .npy array"),
    (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64)), "an HDF5 file"),
])
def test_other_formats_are_named(tmp_path, write, what):
    path = tmp_path / "model.bin"
    write(path)
    with pytest.raises(gd.OnnxError, match=f"not an ONNX model but {what}"):
        gd.from_onnx(str(path))
