"""Resource limits: declared sizes are computed exactly (Python ints, no int64 wrap-around) and
checked against a byte budget passed as an argument, before anything is allocated."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphdl as gd
from graphdl.core.limits import (DEFAULT_MAX_BYTES, ResourceLimitError, check_bytes, element_count,
                            fmt_bytes)


def test_element_count_is_exact_and_refuses_int64_overflow():
    assert element_count([3, 5, 7], "t") == 105
    assert element_count([2 ** 31, 2 ** 31], "t") == 2 ** 62  # fits: no wrap, no refusal
    with pytest.raises(ResourceLimitError, match="overflows int64"):
        element_count([2 ** 32, 2 ** 32], "t")  # int64 arithmetic would wrap this to 0
    with pytest.raises(ResourceLimitError, match="negative dim -1"):
        element_count([4, -1], "t")


def test_byte_budget_is_an_argument():
    assert check_bytes([1024, 1024], 4, "t", max_bytes=4 << 20) == 4 << 20
    with pytest.raises(ResourceLimitError, match=r"needs 4198400 bytes \(4.0 MiB\), more than "
                                                 r"the limit of 4194304 \(4.0 MiB\)"):
        check_bytes([1024, 1025], 4, "t", max_bytes=4 << 20)
    assert DEFAULT_MAX_BYTES == 4 << 30
    assert (fmt_bytes(4 << 40), fmt_bytes(1 << 50), fmt_bytes(100)) == \
        ("4.0 TiB", "1.0 PiB", "100 B")


def _constant_of_shape(shape) -> gd.Graph:
    b = gd.GraphBuilder("big")
    s = b.const(np.array(shape, np.int64))
    return b.build({"y": gd.constant_of_shape(s, 0.0)})


@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_run_refuses_4_tib_before_allocating(backend):
    g = _constant_of_shape([2 ** 20, 2 ** 20, 1])  # 2**40 float32 = 4 TiB
    with pytest.raises(ResourceLimitError,
                       match=r"\(4.0 TiB\), more than the limit of 4294967296 \(4.0 GiB\)"):
        gd.run(g, {}, backend=backend)


@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_run_limit_can_be_lowered_and_raised(backend):
    g = _constant_of_shape([8, 8])  # 256 bytes
    with pytest.raises(ResourceLimitError,
                       match=r"needs 256 bytes \(256 B\), more than the limit of 255 "):
        gd.run(g, {}, backend=backend, max_bytes=255)
    out = gd.run(g, {}, backend=backend, max_bytes=256)["y"]
    assert out.shape == (8, 8) and not out.any()


def test_import_refuses_constant_of_shape_bomb_and_limit_is_configurable():
    shape = numpy_helper.from_array(np.array([64, 64], np.int64), "s")
    node = helper.make_node("ConstantOfShape", ["s"], ["y"])
    g = helper.make_graph([node], "m", [], [helper.make_tensor_value_info("y", 1, None)],
                          [shape])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ResourceLimitError,
                       match=r"16384 bytes \(16.0 KiB\), more than the limit of 1024 "):
        gd.from_onnx(model, max_bytes=1024)
    assert gd.run(gd.from_onnx(model), {})["y"].shape == (64, 64)


def test_initializer_bytes_checked_before_decoding():
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 20, 1 << 20])
    w.raw_data = b"\0" * 16  # a tiny payload claiming 4 TiB
    node = helper.make_node("Identity", ["w"], ["y"])
    g = helper.make_graph([node], "m", [], [helper.make_tensor_value_info("y", 1, None)], [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ResourceLimitError, match="initializer 'w'.*4.0 TiB"):
        gd.from_onnx(model)


def _runtime_sized(op: str):
    """A graph whose output size comes from a fed value (not known when it is built)."""
    b = gd.GraphBuilder(op)
    k = b.input("k", [1], "int64")
    if op == "constant_of_shape":
        out = gd.constant_of_shape(gd.concat([k, k], 0), 1.0)
    elif op == "expand":
        x = b.input("x", [1, 1])
        out = gd.expand(x, gd.concat([k, k], 0))
    elif op == "tile":
        x = b.input("x", [2, 2])
        out = gd.tile(x, gd.concat([k, k], 0))
    else:
        x = b.input("x", [2, 2])
        out = gd.pad(x, gd.concat([k, k, k, k], 0))
    return b.build({"y": out})


@pytest.mark.parametrize("op", ["constant_of_shape", "expand", "tile", "pad"])
def test_run_time_sizes_are_refused_before_allocating(op):
    g = _runtime_sized(op)
    feeds = {"k": np.array([1 << 20], np.int64)}  # 2**40 elements: terabytes
    feeds.update({v.name: np.ones((1, 1) if op == "expand" else (2, 2), np.float32)
                  for v in g.inputs if v.name == "x"})
    with pytest.raises(ResourceLimitError, match=rf"op {op}.*more than the limit"):
        gd.run(g, feeds)
    small = dict(feeds, k=np.array([3], np.int64))
    out = gd.run(g, small, max_bytes=1 << 20)["y"]  # a small size still runs, exactly
    assert out.size == {"constant_of_shape": 9, "expand": 9, "tile": 36, "pad": 64}[op]
    with pytest.raises(ResourceLimitError):  # and the budget is the caller's to set
        gd.run(g, small, max_bytes=8)
