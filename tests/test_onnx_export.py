"""ONNX export: checker-valid models at every supported opset, dynamic dims as dim_param,
parameters as initializers, and a default opset the pinned onnxruntime has kernels for."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnxruntime.capi import _pybind_state as ort_c

import graphdl as gd
from graphdl.onnx.export import DEFAULT_OPSET, MIN_OPSET
from tests.op_samples import all_samples, assert_same
from tests.test_ops_table import build

SAMPLES = [s for s in all_samples() if s.ort]


def _mlp() -> gd.Graph:
    rng = np.random.default_rng(0)
    b = gd.GraphBuilder("mlp")
    x = b.input("x", ["N", 4])
    w = b.param("w", rng.standard_normal((4, 3)).astype(np.float32))
    y = gd.reduce_mean(gd.softmax(gd.relu(x @ w)), axes=[1])
    return b.build({"y": y})


def test_symbolic_dims_become_dim_params_and_params_initializers():
    m = gd.to_onnx(_mlp())
    (inp,) = m.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 4
    assert [i.name for i in m.graph.initializer] == ["w"]
    assert m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert m.opset_import[0].version == DEFAULT_OPSET


@pytest.mark.parametrize("opset", [MIN_OPSET, 17, 18, 21, DEFAULT_OPSET])
def test_every_sample_exports_checker_valid_and_runs_at_opset(opset):
    import onnxruntime as ort

    for s in SAMPLES:
        g, feeds = build(s, np.float32)
        if opset < s.min_opset:
            with pytest.raises(gd.OnnxError, match=f"needs opset >= {s.min_opset}"):
                gd.to_onnx(g, opset=opset)
            continue
        model = gd.to_onnx(g, opset=opset)
        onnx.checker.check_model(model, full_check=True)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        got = sess.run(None, feeds)
        ours = gd.run(g, feeds)
        for (name, want), have in zip(ours.items(), got):
            assert_same(have, want, rtol=1e-5, atol=1e-6, err_msg=f"{s.id} {name}")


def test_default_opset_has_onnxruntime_cpu_kernels_for_every_lowered_op():
    """Each ONNX op graphdl emits, at the version it has in DEFAULT_OPSET, has a CPU kernel
    (or is a Constant, which onnxruntime folds, or a function op, which it inlines)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for d in ort_c.get_all_opkernel_def():
        if d.domain in ("", "ai.onnx") and d.provider == "CPUExecutionProvider":
            ranges.setdefault(d.op_name, []).append(tuple(d.version_range))
    emitted = {n.op_type for s in SAMPLES for n in gd.to_onnx(build(s)[0]).graph.node}
    missing = []
    for op_type in sorted(emitted):
        schema = onnx.defs.get_schema(op_type, DEFAULT_OPSET)
        since = schema.since_version
        if op_type == "Constant" or schema.has_function or schema.has_context_dependent_function:
            continue
        if not any(lo <= since <= hi for lo, hi in ranges.get(op_type, [])):
            missing.append(f"{op_type}-{since}")
    assert not missing, f"onnxruntime lacks kernels for {missing} at opset {DEFAULT_OPSET}"


def test_unsupported_opset_is_a_clear_error():
    with pytest.raises(gd.OnnxError, match="opset 9"):
        gd.to_onnx(_mlp(), opset=9)
