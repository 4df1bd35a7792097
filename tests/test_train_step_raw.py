"""The training step's initial state as raw little-endian arrays (train_step.init.bin, listed
in the manifest) holds exactly what train_step.init.npz holds: names, dtypes, shapes (scalars
stay scalars) and values."""
from __future__ import annotations

import json
import os

import numpy as np

import graphdl as gd
import passes
from graphdl import optim
from graphdl.training.step import raw_arrays, read_raw_arrays


def test_raw_state_equals_the_npz_state(tmp_path):
    b = gd.GraphBuilder("t")
    x, y = b.input("x", ["N", 3]), b.input("y", ["N"], "int64")
    w = b.param("w", np.arange(6, dtype=np.float32).reshape(3, 2))
    step = passes.training_step(b.build({"loss": gd.softmax_cross_entropy(x @ w, y)}),
                                optim.Adam(lr=0.1))
    paths = step.save(str(tmp_path))
    manifest = json.load(open(paths["manifest"]))
    raw = manifest["initial_state"]
    assert raw["file"] == os.path.basename(paths["initial_raw"]) and raw["byte_order"] == "little"
    got = read_raw_arrays(paths["initial_raw"], raw["tensors"])
    with np.load(paths["initial"]) as z:
        want = {k: z[k] for k in z.files}
    assert set(got) == set(want) == {"w", "w.exp_avg", "w.exp_avg_sq", "optim.step"}
    for k, v in want.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v)
    assert got["optim.step"].shape == ()
    assert all(e["offset"] % 8 == 0 for e in raw["tensors"])


def test_raw_arrays_are_little_endian_c_order():
    """Hand-checked bytes: a transposed big-endian float32 array and an int64 scalar."""
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=">f4").T  # [[1, 4], [2, 5], [3, 6]]
    raw, entries = raw_arrays({"a": a, "s": np.asarray(-2, np.int64)})
    assert entries == [
        {"name": "a", "dtype": "float32", "shape": [3, 2], "offset": 0, "nbytes": 24},
        {"name": "s", "dtype": "int64", "shape": [], "offset": 24, "nbytes": 8}]
    assert raw[:24] == np.array([1, 4, 2, 5, 3, 6], "<f4").tobytes()
    assert raw[24:] == (2 ** 64 - 2).to_bytes(8, "little")
