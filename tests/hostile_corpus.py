"""Hostile and broken ONNX models, built by code: each entry writes one model file (and any
side files) into a folder and returns its path. Used by tests/test_hostile_models.py."""
from __future__ import annotations

import os
import random
import stat
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F32 = TensorProto.FLOAT
I64 = TensorProto.INT64


def vi(name: str, shape, dtype: int = F32) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def model(nodes, inputs, outputs, inits=(), opset: int = 17, domain: str = "") -> onnx.ModelProto:
    g = helper.make_graph(nodes, "hostile", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(domain, opset)])
    m.ir_version = 8
    return m


def relu_model() -> onnx.ModelProto:
    """A valid one-node model that the broken ones start from."""
    return model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2, 3])], [vi("y", [2, 3])])


def mlp_model() -> onnx.ModelProto:
    """A valid small MLP with initializers: the seed of the byte mutations."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(5).astype(np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((5, 2)).astype(np.float32), "w2")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]),
             helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]),
             helper.make_node("MatMul", ["h2", "w2"], ["h3"]),
             helper.make_node("Softmax", ["h3"], ["y"], axis=-1)]
    return model(nodes, [vi("x", ["N", 4])], [vi("y", ["N", 2])], [w1, b1, w2])


def conv_model() -> onnx.ModelProto:
    """A valid conv -> pool -> flatten -> gemm model: the second mutation seed."""
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((8, 3)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"])]
    return model(nodes, [vi("x", [1, 1, 4, 4])], [vi("y", [1, 3])], [w, fc])


def _raw(name: str, dims, dtype: int, raw: bytes) -> TensorProto:
    t = TensorProto(name=name, data_type=dtype, dims=list(dims))
    t.raw_data = raw
    return t


def _external(name: str, dims, location: str, offset: int = 0, length: int | None = None,
              dtype: int = F32) -> TensorProto:
    t = TensorProto(name=name, data_type=dtype, dims=list(dims))
    t.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        t.external_data.add(key=k, value=v)
    return t


def external_model(location: str, dims=(2, 3), **kw) -> onnx.ModelProto:
    """Add(x, w) with w stored externally at ``location``."""
    w = _external("w", dims, location, **kw)
    return model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", list(dims))],
                 [vi("y", list(dims))], [w])


def _one(op: str, ins, outs, inputs, outputs, inits=(), **attrs) -> onnx.ModelProto:
    return model([helper.make_node(op, ins, outs, **attrs)], inputs, outputs, inits)


def _const_i64(name: str, values) -> TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _bad_attr_type() -> onnx.ModelProto:
    node = helper.make_node("Transpose", ["x"], ["y"])
    node.attribute.add(name="perm", type=onnx.AttributeProto.STRING, s=b"1,0")
    return model([node], [vi("x", [2, 3])], [vi("y", [3, 2])])


def _attr_type_mismatch() -> onnx.ModelProto:
    """An attribute whose declared type (INTS) disagrees with the field it fills (f)."""
    node = helper.make_node("Transpose", ["x"], ["y"])
    node.attribute.add(name="perm", type=onnx.AttributeProto.INTS, f=1.5)
    return model([node], [vi("x", [2, 3])], [vi("y", [3, 2])])


def _cycle() -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["b"], ["a"]), helper.make_node("Relu", ["a"], ["b"])],
                 [vi("x", [2])], [vi("b", [2])])


def _self_loop() -> onnx.ModelProto:
    return model([helper.make_node("Add", ["x", "y"], ["y"])], [vi("x", [2])], [vi("y", [2])])


def _out_of_order() -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["a"], ["y"]), helper.make_node("Relu", ["x"], ["a"])],
                 [vi("x", [2])], [vi("y", [2])])


def _dims(shape) -> onnx.ModelProto:
    return model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", shape)], [vi("y", None)])


def _no_graph_model() -> onnx.ModelProto:
    m = onnx.ModelProto(ir_version=8)
    m.opset_import.add(domain="", version=17)
    return m


def _sequence_input() -> onnx.ModelProto:
    seq = helper.make_tensor_sequence_value_info("x", F32, [2])
    return model([helper.make_node("Identity", ["x"], ["y"])], [seq], [vi("y", [2])])


def _subgraph() -> onnx.ModelProto:
    branch = helper.make_graph([helper.make_node("Relu", ["x"], ["z"])], "b", [], [vi("z", [2])])
    node = helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)
    return model([node], [vi("c", [], TensorProto.BOOL), vi("x", [2])], [vi("y", [2])])


def _sparse() -> onnx.ModelProto:
    m = relu_model()
    vals = numpy_helper.from_array(np.ones(1, np.float32), "s")
    idx = numpy_helper.from_array(np.zeros(1, np.int64), "i")
    m.graph.sparse_initializer.add().CopyFrom(helper.make_sparse_tensor(vals, idx, [4]))
    return m


def _dup_inits() -> onnx.ModelProto:
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
    return model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2, 3])],
                 [vi("y", [2, 3])], [w, w])


def _huge_const_of_shape() -> onnx.ModelProto:
    """ConstantOfShape of 4 TiB (2**40 float32 elements)."""
    shape = _const_i64("s", [2 ** 20, 2 ** 20, 4])
    return _one("ConstantOfShape", ["s"], ["y"], [], [vi("y", None)], [shape])


def _overflow_const_of_shape() -> onnx.ModelProto:
    shape = _const_i64("s", [2 ** 40, 2 ** 40])
    return _one("ConstantOfShape", ["s"], ["y"], [], [vi("y", None)], [shape])


def _huge_expand() -> onnx.ModelProto:
    shape = _const_i64("s", [2 ** 31, 2 ** 31])
    return _one("Expand", ["x", "s"], ["y"], [vi("x", [1, 1])], [vi("y", None)], [shape])


def _huge_tile() -> onnx.ModelProto:
    reps = _const_i64("r", [2 ** 30, 2 ** 30])
    return _one("Tile", ["x", "r"], ["y"], [vi("x", [2, 2])], [vi("y", None)], [reps])


def _huge_range() -> onnx.ModelProto:
    inits = [_const_i64("a", 0), _const_i64("b", 2 ** 50), _const_i64("d", 1)]
    return _one("Range", ["a", "b", "d"], ["y"], [], [vi("y", None, I64)], inits)


_X4 = [vi("x", [1, 1, 4, 4])]


def _on_x4(op: str, inits=(), extra=(), n_out: int = 1, **attrs) -> Callable[[], onnx.ModelProto]:
    """One ``op`` on a [1,1,4,4] input (plus initializer inputs ``extra``) with bad attrs."""
    outs = [f"y{k}" for k in range(n_out)]
    return lambda: _one(op, ["x", *extra], outs, _X4, [vi(outs[0], None)], list(inits), **attrs)


def _w3() -> TensorProto:
    return numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")


def _split18(num_outputs: int) -> onnx.ModelProto:
    """Split (opset 18) into two outputs whose ``num_outputs`` says otherwise."""
    node = helper.make_node("Split", ["x"], ["y0", "y1"], axis=2, num_outputs=num_outputs)
    return model([node], _X4, [vi("y0", None), vi("y1", None)], opset=18)


#: Ops whose attributes or constant inputs no shape rule can satisfy.
BAD_OPS = {
    "conv_stride_0": _on_x4("Conv", [_w3()], ["w"], strides=[0, 0]),
    "conv_pads_2e40": _on_x4("Conv", [_w3()], ["w"], pads=[2 ** 40] * 4),
    "maxpool_stride_0": _on_x4("MaxPool", kernel_shape=[2, 2], strides=[0, 0]),
    "transpose_perm_out_of_range": _on_x4("Transpose", perm=[0, 1, 2, 9]),
    "softmax_axis_99": _on_x4("Softmax", axis=99),
    "split_negative": _on_x4("Split", [_const_i64("s", [-1, 5])], ["s"], n_out=2, axis=2),
    "slice_step_0": _on_x4("Slice", [_const_i64(n, v) for n, v in
                                     (("b", [0]), ("e", [2]), ("a", [2]), ("st", [0]))],
                           ["b", "e", "a", "st"]),
    "pad_2e40": _on_x4("Pad", [_const_i64("p", [0, 0, 2 ** 40, 2 ** 40, 0, 0, 0, 0])], ["p"]),
    "reshape_two_minus_ones": _on_x4("Reshape", [_const_i64("s", [-1, -1])], ["s"]),
    "tile_negative": _on_x4("Tile", [_const_i64("r", [1, 1, -2, 1])], ["r"]),
    "gather_axis_99": _on_x4("Gather", [_const_i64("i", [0])], ["i"], axis=99),
    "lrn_size_0": _on_x4("LRN", size=0),
    "split_num_outputs_0": lambda: _split18(0),
    "split_num_outputs_2e40": lambda: _split18(2 ** 40),
    "cast_to_999": _on_x4("Cast", to=999),
    "range_delta_0": lambda: _one("Range", ["a", "b", "d"], ["y"], [], [vi("y", None, I64)],
                                  [_const_i64("a", 0), _const_i64("b", 5), _const_i64("d", 0)]),
}


def _write(path: Path, m: onnx.ModelProto) -> Path:
    path.write_bytes(m.SerializeToString())
    return path


def _raw_file(data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / "model.onnx"
        p.write_bytes(data)
        return p
    return make


def _proto(fn: Callable[[], onnx.ModelProto]) -> Callable[[Path], Path]:
    return lambda folder: _write(folder / "model.onnx", fn())


def _ext(location: str, setup: Callable[[Path], None] | None = None,
         **kw) -> Callable[[Path], Path]:
    """An external-data model whose side files ``setup`` creates first."""
    def make(folder: Path) -> Path:
        sub = folder / "m"
        sub.mkdir()
        if setup is not None:
            setup(sub)
        return _write(sub / "model.onnx", external_model(location, **kw))
    return make


def _data(name: str = "w.bin", size: int = 24) -> Callable[[Path], None]:
    return lambda d: (d / name).write_bytes(np.ones(size // 4, np.float32).tobytes())


def _setup_symlink(d: Path) -> None:
    (d.parent / "secret.bin").write_bytes(b"\0" * 24)
    os.symlink(d.parent / "secret.bin", d / "w.bin")


def _setup_parent_symlink(d: Path) -> None:
    (d.parent / "real").mkdir()
    (d.parent / "real" / "w.bin").write_bytes(b"\0" * 24)
    os.symlink(d.parent / "real", d / "sub")


def _setup_hardlink(d: Path) -> None:
    (d.parent / "secret.bin").write_bytes(b"\0" * 24)
    os.link(d.parent / "secret.bin", d / "w.bin")


def _setup_fifo(d: Path) -> None:
    os.mkfifo(d / "w.bin")


def _setup_device(d: Path) -> None:
    """A character device (/dev/zero's numbers) where the data should be; a FIFO where this
    user may not create devices."""
    try:
        os.mknod(d / "w.bin", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        os.mkfifo(d / "w.bin")


def _truncated(folder: Path) -> Path:
    data = mlp_model().SerializeToString()
    return _raw_file(data[: len(data) // 2])(folder)


def _wrong_wire_type(folder: Path) -> Path:
    """Field 7 (graph) sent as a varint instead of a length-delimited message."""
    return _raw_file(b"\x08\x08" + b"\x38\x05")(folder)


def _bad_utf8_name() -> onnx.ModelProto:
    """A graph name whose bytes are not UTF-8 (protobuf then hands back bytes, not str)."""
    data = relu_model().SerializeToString().replace(b"hostile", b"hos\xf4ile")
    return onnx.ModelProto.FromString(data)


def _fifo_model(folder: Path) -> Path:
    """A FIFO where the model file should be: reading it would block forever."""
    os.mkfifo(folder / "model.onnx")
    return folder / "model.onnx"


def _folder_model(folder: Path) -> Path:
    (folder / "model.onnx").mkdir()
    return folder / "model.onnx"


#: name -> a function that writes the model into a fresh folder and returns its path.
CORPUS: dict[str, Callable[[Path], Path]] = {
    "empty_file": _raw_file(b""),
    "name_not_utf8": _proto(_bad_utf8_name),
    "name_with_nul": _proto(lambda: _one("Relu", ["x"], ["y\0z"], [vi("x", [2])],
                                         [vi("y\0z", [2])])),
    "no_outputs": _proto(lambda: model([], [], [])),
    "model_is_fifo": _fifo_model,
    "model_is_folder": _folder_model,
    "random_bytes": _raw_file(bytes(random.Random(7).randrange(256) for _ in range(300))),
    "text_file": _raw_file(b"this is not an onnx model\n"),
    "truncated_protobuf": _truncated,
    "wrong_wire_type": _wrong_wire_type,
    "no_graph": _proto(_no_graph_model),
    "no_default_opset": _proto(lambda: model([helper.make_node("Relu", ["x"], ["y"])],
                                             [vi("x", [2])], [vi("y", [2])], domain="x.y")),
    "opset_9999": _proto(lambda: model([helper.make_node("Relu", ["x"], ["y"])],
                                       [vi("x", [2])], [vi("y", [2])], opset=9999)),
    "opset_0": _proto(lambda: model([helper.make_node("Relu", ["x"], ["y"])],
                                    [vi("x", [2])], [vi("y", [2])], opset=0)),
    "unknown_op": _proto(lambda: _one("FrobnicateTensor", ["x"], ["y"], [vi("x", [2])],
                                      [vi("y", [2])])),
    "unknown_domain": _proto(lambda: model([helper.make_node("Relu", ["x"], ["y"],
                                                             domain="com.evil")],
                                           [vi("x", [2])], [vi("y", [2])])),
    "empty_op_type": _proto(lambda: _one("", ["x"], ["y"], [vi("x", [2])], [vi("y", [2])])),
    "dangling_input": _proto(lambda: _one("Add", ["x", "ghost"], ["y"], [vi("x", [2])],
                                          [vi("y", [2])])),
    "undefined_output": _proto(lambda: _one("Relu", ["x"], ["y"], [vi("x", [2])],
                                            [vi("z", [2])])),
    "duplicate_node_output": _proto(lambda: model(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Neg", ["x"], ["y"])],
        [vi("x", [2])], [vi("y", [2])])),
    "output_shadows_input": _proto(lambda: _one("Relu", ["x"], ["x"], [vi("x", [2])],
                                                [vi("x", [2])])),
    "duplicate_graph_input": _proto(lambda: _one("Add", ["x", "x"], ["y"],
                                                 [vi("x", [2]), vi("x", [2])], [vi("y", [2])])),
    "duplicate_initializer": _proto(_dup_inits),
    "cycle": _proto(_cycle),
    "self_loop": _proto(_self_loop),
    "nodes_out_of_order": _proto(_out_of_order),
    "attr_wrong_type": _proto(_bad_attr_type),
    "attr_type_field_mismatch": _proto(_attr_type_mismatch),
    "missing_required_attr": _proto(lambda: _one("Concat", ["x", "x"], ["y"], [vi("x", [2])],
                                                 [vi("y", [4])])),
    "negative_dim": _proto(lambda: _dims([2, -5])),
    "overflowing_dims": _proto(lambda: _dims([2 ** 62, 2 ** 62, 16])),
    "init_raw_too_short": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [10])], [vi("y", [10])],
        [_raw("w", [10], F32, b"\0" * 4)])),
    "init_raw_too_long": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])], [vi("y", [2])],
        [_raw("w", [2], F32, b"\0" * 4000)])),
    "init_float_data_count": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [3])], [vi("y", [3])],
        [TensorProto(name="w", data_type=F32, dims=[3], float_data=[1.0])])),
    "init_negative_dims": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])], [vi("y", [2])],
        [_raw("w", [-2], F32, b"")])),
    "init_petabyte_dims": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])], [vi("y", [2])],
        [_raw("w", [2 ** 25, 2 ** 25], F32, b"\0" * 16)])),
    "init_overflow_dims": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2])], [vi("y", [2])],
        [_raw("w", [2 ** 40, 2 ** 40], F32, b"\0" * 16)])),
    "init_unknown_dtype": _proto(lambda: model(
        [helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [1])], [vi("y", [1])],
        [_raw("w", [1], 999, b"\0" * 4)])),
    "input_undefined_dtype": _proto(lambda: _one("Relu", ["x"], ["y"], [vi("x", [2], 0)],
                                                 [vi("y", [2])])),
    "sequence_input": _proto(_sequence_input),
    "subgraph_if": _proto(_subgraph),
    "sparse_initializer": _proto(_sparse),
    "constant_no_value": _proto(lambda: model([helper.make_node("Constant", [], ["y"])], [],
                                              [vi("y", [2])])),
    "const_of_shape_4tib": _proto(_huge_const_of_shape),
    "const_of_shape_overflow": _proto(_overflow_const_of_shape),
    "expand_huge": _proto(_huge_expand),
    "tile_huge": _proto(_huge_tile),
    "range_huge": _proto(_huge_range),
    "matmul_shape_mismatch": _proto(lambda: _one("MatMul", ["x", "x"], ["y"], [vi("x", [2, 3])],
                                                 [vi("y", None)])),
    "reshape_bad_size": _proto(lambda: _one("Reshape", ["x", "s"], ["y"], [vi("x", [2, 3])],
                                            [vi("y", None)], [_const_i64("s", [4, 4])])),
    "ext_dotdot": _ext("../w.bin"),
    "ext_absolute": _ext("/etc/passwd"),
    "ext_symlink": _ext("w.bin", _setup_symlink),
    "ext_parent_symlink": _ext("sub/w.bin", _setup_parent_symlink),
    "ext_hardlink": _ext("w.bin", _setup_hardlink),
    "ext_fifo": _ext("w.bin", _setup_fifo),
    "ext_device": _ext("w.bin", _setup_device),
    "ext_dev_zero_traversal": _ext("../../../../../../dev/zero"),
    "ext_missing": _ext("nope.bin"),
    "ext_offset_beyond": _ext("w.bin", _data(), offset=1000),
    "ext_length_beyond": _ext("w.bin", _data(), length=10 ** 6),
    "ext_petabyte": _ext("w.bin", _data(), dims=(2 ** 25, 2 ** 25)),
    "ext_size_mismatch": _ext("w.bin", _data(size=8)),
    "ext_negative_offset": _ext("w.bin", _data(), offset=-8),
    **{name: _proto(fn) for name, fn in BAD_OPS.items()},
}


def mutations(n: int, seed: int = 0) -> list[bytes]:
    """``n`` random byte-level mutations (flips, overwrites, deletions, insertions, truncations,
    duplications) of the serialized seed models."""
    rng = random.Random(seed)
    seeds = [m.SerializeToString() for m in (mlp_model(), conv_model(), relu_model())]
    out = []
    for _ in range(n):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            _mutate(rng, data)
        out.append(bytes(data))
    return out


def _mutate(rng: random.Random, data: bytearray) -> None:
    if not data:
        data.extend(rng.randbytes(rng.randint(1, 8)))
    i = rng.randrange(len(data))
    kind = rng.randrange(6)
    if kind == 0:
        data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data[i] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
    elif kind == 2:
        del data[i:i + rng.randint(1, 8)]
    elif kind == 3:
        data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif kind == 4:
        del data[i:]
    else:
        data[i:i] = data[i:i + rng.randint(1, 32)]


# -- the worker: runs many cases in one process, each under an alarm, under a memory cap --------


def _feeds_for(path: str, folder: Path) -> list[str]:
    """``--feed`` arguments of small random arrays for the model's inputs (symbols = 2)."""
    import graphdl as gd

    g = gd.from_onnx(path)
    args = []
    for k, v in enumerate(g.inputs):
        shape = [d if isinstance(d, int) else 2 for d in (v.type.shape or ())]
        arr = np.random.default_rng(k).standard_normal(shape).astype(v.type.dtype.np)
        np.save(folder / f"feed{k}.npy", arr)
        args += ["--feed", f"{v.name}={folder / f'feed{k}.npy'}"]
    return args


def _cli(argv: list[str]) -> dict:
    import contextlib
    import io

    from graphdl.tools.cli import main as cli_main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli_main(argv)
    return {"rc": rc, "stderr": err.getvalue().splitlines()}


def _api(path: str) -> str:
    """'ok', or the name of the GraphError subclass from_onnx raised ('!' + name otherwise)."""
    import graphdl as gd

    try:
        gd.from_onnx(path)
    except gd.GraphError as e:
        return type(e).__name__
    except Exception as e:  # noqa: BLE001 - the point: anything else is a finding
        return f"!{type(e).__name__}: {e}"
    return "ok"


def run_case(path: str) -> dict:
    """Imports through the API and the CLI; a model that imports is also run in both
    engines."""
    res = {"api": _api(path), **_cli(["inspect", path])}
    if res["rc"] == 0:
        folder = Path(path).parent
        feeds = _feeds_for(path, folder)
        for backend in ("numpy", "ort"):
            run = _cli(["run", path, *feeds, "--backend", backend, "-o", str(folder / "o.npz")])
            res.setdefault("run_rc", []).append(run["rc"])
            res.setdefault("run_stderr", []).extend(run["stderr"])
    return res


def _worker(case_timeout: int, mem_bytes: int) -> None:
    """Reads one path per stdin line, prints one JSON result per line."""
    import json
    import resource
    import signal
    import sys

    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))

    def hang(*_):
        raise TimeoutError(f"case ran over {case_timeout} s")
    signal.signal(signal.SIGALRM, hang)
    for line in sys.stdin:
        path = line.strip()
        signal.alarm(case_timeout)
        try:
            res = run_case(path)
        except BaseException as e:  # noqa: BLE001 - reported, not hidden
            res = {"rc": "crash", "stderr": [f"{type(e).__name__}: {e}"]}
        signal.alarm(0)
        print(json.dumps({"path": path, **res}), flush=True)


if __name__ == "__main__":
    import sys

    _worker(int(sys.argv[1]), int(sys.argv[2]))
