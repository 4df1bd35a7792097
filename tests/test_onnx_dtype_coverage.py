"""Every (op, float dtype) graphdl exports runs in stock onnxruntime: each op-table sample row is
exported in float32 and in float64 and run there, and must match the interpreter. Where the
pinned onnxruntime has no kernel for a dtype, the op's lowering must choose ops that have one
(elu and leaky_relu in float64 emit Where/Exp; rnn, lstm and gru emit their unrolled
decomposition through LowerCtx.emit_decomposition; conv, conv_transpose, conv_weight_grad,
avg_pool and lrn emit im2col through Pad/Slice/MatMul, graphdl/ops/im2col_lowering.py). A row
still missing a fallback goes in KNOWN_GAPS as a strict xfail, so fixing it turns its row into
a failure until it is removed.

The window-op fallbacks are then checked row by row against the interpreter (relative 1e-10)
over stride, padding, dilation, group, auto_pad and ceil_mode variants, with a symbolic batch.

The integer dtypes int16, uint16, uint32 and uint64 run every op row (its float inputs as small
ints) and must either run in onnxruntime with the interpreter's exact result (through the
wider dtype the op's OpDef.widen names where onnxruntime lacks the kernel) or be
refused with an error naming the op and the dtype. String tensors run there too."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest

import graphdl as gd
from graphdl.onnx.export import DEFAULT_OPSET
from graphdl.ops.window import out_dims
from graphdl.onnx.coverage import widened
from tests.op_samples import Sample, all_samples, randn
from tests.test_ops_table import build

WIDEN = widened()  # op -> {dtype onnxruntime lacks: the dtype export computes in}

#: (op, dtype) rows whose lowering has no onnxruntime kernel and no fallback yet
KNOWN_GAPS: set[tuple[str, str]] = {
    ("erf", "float64"),  # onnxruntime has no float64 Erf, and no exact spelling from other ops
    ("gelu", "float64"),  # the exact GELU is erf's: the tanh form has a fallback
}


def _rows():
    seen, rows = set(), []
    for s in all_samples():
        if s.ort is False or all(a is None or a.dtype.kind != "f" for a in s.inputs):
            continue
        for dt in ("float32", "float64"):
            if (s.op, dt) in seen:
                continue
            seen.add((s.op, dt))
            marks = [pytest.mark.xfail(strict=True, reason="no float64 fallback yet")] \
                if (s.op, dt) in KNOWN_GAPS else []
            rows.append(pytest.param(s, dt, id=f"{s.op}-{dt}", marks=marks))
    return rows


@pytest.mark.parametrize("s,dtype", _rows())
def test_op_runs_in_onnxruntime_in_each_float_dtype(s, dtype):
    try:
        g, feeds = build(s, np.dtype(dtype))
    except gd.DTypeError:
        pytest.skip(f"{s.op}: this row fixes float64 in its attributes")
    ours, theirs = gd.run(g, feeds), gd.run(g, feeds, backend="ort")
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-6, atol=1e-7)
    for name, want in ours.items():
        assert theirs[name].dtype == np.asarray(want).dtype
        np.testing.assert_allclose(theirs[name], want, **tol, err_msg=name)


# -- the float64 im2col fallbacks of the window ops ----------------------------------------------

WINDOW_OPS = ("conv", "conv_transpose", "conv_weight_grad", "avg_pool", "lrn")
#: the ONNX ops stock onnxruntime has no float64 kernel for (get_all_opkernel_def)
NO_F64_KERNEL = {"Conv", "ConvTranspose", "AveragePool", "GlobalAveragePool", "LRN"}


def _geo(r, strides=None, pads=None, dilations=None, group=1):
    return {"strides": strides or (1,) * r, "pads": pads or (0,) * (2 * r),
            "dilations": dilations or (1,) * r, "group": group}


def _weight_grad(x, kernel, **geo):
    """A conv_weight_grad row: the output gradient is shaped like conv(x, w)'s output."""
    outs = out_dims("conv", x.shape[2:], kernel, geo)
    gy = randn(x.shape[0], 6, *outs, seed=3)
    return Sample("conv_weight_grad", [x, gy], {**geo, "kernel_shape": kernel})


def _pool(kernel, strides, pads=None, ceil=0, include=0, dilations=None, auto="NOTSET"):
    return {"kernel_shape": kernel, "strides": strides, "pads": pads or (0,) * (2 * len(kernel)),
            "dilations": dilations, "ceil_mode": ceil, "count_include_pad": include,
            "auto_pad": auto}


VARIANTS = [
    Sample("conv", [randn(2, 6, 9, 8), randn(6, 2, 3, 2, seed=1), randn(6, seed=2)],
           {**_geo(2, (3, 2), (2, 0, 1, 1), (2, 1), 3), "auto_pad": "NOTSET"},
           label="stride3-dilation2-group3-bias"),
    Sample("conv", [randn(3, 4, 11), randn(4, 1, 4, seed=1)],
           {**_geo(1, (2,), (3, 1), (2,), 4), "auto_pad": "NOTSET"}, label="1d-depthwise"),
    Sample("conv", [randn(2, 2, 7, 6), randn(3, 2, 3, 3, seed=1)],
           {**_geo(2, (2, 2), None, (1, 2)), "auto_pad": "SAME_LOWER"},
           label="same-lower-dilated"),
    Sample("conv_transpose", [randn(2, 6, 4, 3), randn(6, 2, 3, 3, seed=1), randn(6, seed=2)],
           {**_geo(2, (3, 2), (1, 2, 0, 1), (1, 2), 3), "output_padding": (2, 1)},
           label="stride3-group3-outpad"),
    Sample("conv_transpose", [randn(2, 2, 5), randn(2, 3, 2, seed=1)],
           {**_geo(1, (1,), (2, 3), (1,)), "output_padding": None},
           label="1d-pads-past-kernel"),
    _weight_grad(randn(2, 6, 9, 8), (3, 2), **_geo(2, (3, 2), (2, 0, 1, 1), (2, 1), 3)),
    _weight_grad(randn(3, 2, 11), (4,), **_geo(1, (2,), (3, 1), (2,))),
    Sample("avg_pool", [randn(2, 3, 8, 7)], _pool((3, 2), (2, 3), (1, 0, 2, 1), 1, 0, (2, 1)),
           label="dilated-ceil-exclude"),
    Sample("avg_pool", [randn(2, 3, 8, 7)], _pool((3, 3), (2, 2), (1, 1, 1, 1), 1, 1),
           label="ceil-include"),
    Sample("avg_pool", [randn(2, 3, 10)], _pool((4,), (3,), auto="SAME_UPPER"),
           label="1d-same-upper"),
    Sample("lrn", [randn(2, 7, 3)], {"size": 4, "alpha": 0.3, "beta": 0.7, "bias": 1.5},
           label="rank3-even"),
    Sample("lrn", [randn(2, 5, 2, 2, 3)], {"size": 3, "alpha": 0.2}, label="rank5"),
]


def _window_rows():
    rows = [s for s in all_samples() if s.op in WINDOW_OPS] + VARIANTS
    return [pytest.param(s, id=f"{s.op}-{s.label or i}") for i, s in enumerate(rows)]


def _batched(s: Sample, dtype) -> tuple[gd.Graph, dict]:
    """The row's graph with a symbolic batch dim on its data inputs (not on the weights)."""
    b = gd.GraphBuilder(s.op)
    batched = {0, 1} if s.op == "conv_weight_grad" else {0}
    ins, feeds = [], {}
    for i, a in enumerate(s.inputs):
        feeds[f"in{i}"] = a.astype(dtype)
        shape = ["N", *a.shape[1:]] if i in batched else list(a.shape)
        ins.append(b.input(f"in{i}", shape, dtype))
    return b.build({"y": b.apply1(s.op, ins, **s.attrs)}), feeds


@pytest.mark.parametrize("s", _window_rows())
def test_float64_window_fallback_equals_interpreter(s):
    """No float64 Conv/ConvTranspose/AveragePool/LRN node is exported; what is exported runs in
    onnxruntime at two batch sizes and equals the interpreter within 1e-10 relative."""
    g, feeds = _batched(s, np.float64)
    kinds = {n.op_type for n in gd.to_onnx(g).graph.node}
    assert not kinds & NO_F64_KERNEL, kinds
    for n in (feeds["in0"].shape[0], 1):
        part = {k: v[:n] if k == "in0" or s.op == "conv_weight_grad" and k == "in1" else v
                for k, v in feeds.items()}
        want, got = gd.run(g, part)["y"], gd.run(g, part, backend="ort")["y"]
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


def test_float32_keeps_onnxruntimes_own_window_ops():
    """The fallback is for float64 only: float32 still exports Conv and AveragePool."""
    b = gd.GraphBuilder("f32")
    x = b.input("x", ["N", 2, 6, 6], "float32")
    w = b.param("w", randn(3, 2, 3, 3).astype(np.float32))
    y = gd.avg_pool(gd.conv(x, w, pads=1), 2)
    kinds = [n.op_type for n in gd.to_onnx(b.build({"y": y})).graph.node]
    assert "Conv" in kinds and "AveragePool" in kinds and "MatMul" not in kinds


def test_float32_lrn_with_an_even_size_follows_the_definition_in_onnxruntime():
    """onnxruntime's LRN kernel centres even windows differently from ONNX's definition, so
    even sizes export as the definition; checked against the interpreter in float32."""
    s = Sample("lrn", [randn(2, 6, 3, 2)], {"size": 4, "alpha": 0.5, "beta": 0.75, "bias": 1.0})
    g, feeds = build(s, np.float32)
    assert "LRN" not in {n.op_type for n in gd.to_onnx(g).graph.node}
    np.testing.assert_allclose(gd.run(g, feeds, backend="ort")["out0"],
                               gd.run(g, feeds)["out0"], rtol=1e-5, atol=1e-6)


def test_float64_fallback_needs_static_spatial_dims():
    b = gd.GraphBuilder("sym")
    x = b.input("x", ["N", 2, "H", 6], "float64")
    y = gd.conv(x, b.param("w", randn(3, 2, 3, 3)))
    with pytest.raises(gd.OnnxError, match=r"conv: exporting float64 needs static"):
        gd.to_onnx(b.build({"y": y}))


def test_float64_cnn_export_passes_the_full_checker():
    b = gd.GraphBuilder("cnn64")
    x = b.input("x", ["N", 2, 7, 7], "float64")
    y = gd.conv(x, b.param("w", randn(4, 1, 3, 3)), b.param("b", randn(4)), strides=2,
                pads=1, group=2)
    y = gd.lrn(gd.avg_pool(y, 2, strides=1, count_include_pad=True, pads=1), 3)
    onnx.checker.check_model(gd.to_onnx(b.build({"y": y})), full_check=True)


# -- the integer dtypes added for the ONNX backend cases ----------------------------------------

NEW_INTS = ("int16", "uint16", "uint32", "uint64")
#: graphdl op -> the ONNX op its WIDEN entry stands in for
ONNX_TYPE = {"maximum": "Max", "minimum": "Min", "pad": "Pad", "where": "Where", "pow": "Pow",
             "reduce_sum": "ReduceSum", "matmul": "MatMul", "reduce_max": "ReduceMax",
             "reduce_mean": "ReduceMean", "max_pool": "MaxPool", "avg_pool": "AveragePool",
             "conv": "Conv", "conv_transpose": "ConvTranspose", "conv_weight_grad": "Conv",
             "trilu": "Trilu", "cumsum": "CumSum", "einsum": "Einsum", "argmax": "ArgMax"}


def _as_int(s: Sample, dtype: str) -> Sample:
    """The row with its float inputs as small positive ints (>= 1: no division by zero, which
    would crash onnxruntime)."""
    ins = [a if a is None or a.dtype.kind != "f" else (np.round(np.abs(a) * 4) + 1).astype(dtype)
           for a in s.inputs]
    return dataclasses.replace(s, inputs=ins)


def _int_rows():
    seen, rows = set(), []
    for s in all_samples():
        if s.ort is False or all(a is None or a.dtype.kind != "f" for a in s.inputs):
            continue
        for dt in NEW_INTS:
            if (s.op, dt) not in seen:
                seen.add((s.op, dt))
                rows.append(pytest.param(s, dt, id=f"{s.op}-{dt}"))
    return rows


@pytest.mark.parametrize("s,dtype", _int_rows())
def test_every_op_in_each_new_int_dtype_runs_in_onnxruntime_or_is_refused(s, dtype):
    """An (op, dtype) graphdl builds either exports to what onnxruntime runs, with the
    interpreter's exact result, or export refuses it naming the op and the dtype."""
    row = _as_int(s, dtype)
    try:
        g, feeds = build(row, np.dtype(dtype))
    except gd.DTypeError:
        return  # the op takes no integers (or not this kind): refused where it is built
    try:
        gd.to_onnx(g)
    except gd.OnnxError as e:
        assert f"cannot export {s.op} on {dtype}" in str(e)
        assert WIDEN[s.op][gd.DType.of(dtype)] is None
        return
    ours, theirs = gd.run(g, feeds), gd.run(g, feeds, backend="ort")
    for name, want in ours.items():
        assert theirs[name].dtype == np.asarray(want).dtype, name
        if want.dtype.kind == "f":  # reduce/divide in float after a cast
            np.testing.assert_allclose(theirs[name], want, rtol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(theirs[name], want, err_msg=name)


def _ort_types(op_type: str) -> set[str]:
    from onnxruntime.capi import _pybind_state as ort_c

    out = set()
    for d in ort_c.get_all_opkernel_def():
        if d.op_name == op_type and d.domain in ("", "ai.onnx") and \
                d.provider == "CPUExecutionProvider" and d.version_range[1] >= DEFAULT_OPSET:
            out.update(t for ts in d.type_constraints.values() for t in ts)
    return out


@pytest.mark.parametrize("op", sorted(WIDEN))
def test_widen_table_lists_only_missing_kernels(op):
    """Every (op, dtype) in WIDEN really lacks an onnxruntime CPU kernel at the default opset,
    and every dtype it computes in instead has one."""
    have = _ort_types(ONNX_TYPE[op])
    for narrow, via in WIDEN[op].items():
        assert f"tensor({narrow.name})" not in have, f"{op}: onnxruntime has {narrow.name}"
        assert via is None or f"tensor({via.name})" in have, f"{op}: no {via.name} kernel"


def test_string_tensors_export_and_run_in_onnxruntime():
    """A string input through identity, equal and string_normalizer, in both engines."""
    b = gd.GraphBuilder("strings")
    x = b.input("x", [4], "string")
    y = gd.string_normalizer(x, stopwords=["b"], case_change_action="UPPER")
    g = b.build({"y": y, "same": x.eq(gd.identity(x))})
    feeds = {"x": np.array(["a", "B", "c", "b"], dtype=object)}
    theirs = gd.run(g, feeds, backend="ort")
    np.testing.assert_array_equal(theirs["y"], np.array(["A", "C"], dtype=object))
    np.testing.assert_array_equal(gd.run(g, feeds)["y"], theirs["y"])
    assert theirs["same"].all()
