"""The ONNX backend node test cases shipped in the ``onnx`` wheel
(``onnx.backend.test.case.node.collect_testcases()``: one small model each, its inputs and the
outputs of onnx's own reference), for graphdl's op list, through ``from_onnx`` and graphdl's
interpreter.

In scope: every case whose nodes all have ONNX op types graphdl imports or that the ONNX import
issue names (``NAMED_OPS``), minus cases with bfloat16/float8/int4/int2/float4 tensors and cases
whose expected values come from a random generator. Every in-scope case runs, or is skipped with
its reason in ``SKIPPED`` or in ``_skip_reason`` (an op not yet imported, computed from the
importer table, so the list shrinks as ops land). A case that fails is a failure, never skipped.

Cases run as shipped. Sequence and optional graph inputs and outputs are resolved at import time
(graphdl/onnx/boundary.py), from the case's own data: an input fed a list of k arrays is a
sequence of length k (``sequence_lengths``), fed as the tensor inputs ``name.0`` ...; one fed
None is an absent optional (``absent_inputs``); an output expected as a list is compared
element by element with the tensor outputs ``name.0`` ... that the graph's metadata names.
Inputs graphdl needs at import time (axes, split sizes, pads, dropout's switches,
sequence_lens) are fed at run time as the cases ship them: the engine specialises the graph
on their values (graphdl/onnx/specialisation.py), so the count reported here is what a user gets.
"""
from __future__ import annotations

import json
import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import graphdl as gd
from graphdl.onnx.importers import import_table
from tests.onnx_models import spread

#: ONNX op types the ONNX import issue names (beyond what graphdl imports), with the issue whose
#: ops they are; a case using one that is not yet imported is skipped naming that issue.
NAMED_OPS = {
    "LRN": 7, "Sum": 7, "Max": 7, "Min": 7, "Clip": 7, "Pad": 7, "Split": 7, "Tile": 7,
    "Sign": 7, "NegativeLogLikelihoodLoss": 7, "SoftmaxCrossEntropyLoss": 7, "Softmax": 7,
    "LogSoftmax": 7, "Conv": 3, "MaxPool": 3, "AveragePool": 3, "GlobalAveragePool": 3,
    "GlobalMaxPool": 3, "Flatten": 3, "RNN": 4, "LSTM": 4, "GRU": 4, "Dropout": 5,
    "BatchNormalization": 5,
}
#: element types outside the issue's scope (low-precision floats and sub-byte ints)
EXCLUDED_TYPES = {"BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ",
                  "FLOAT8E8M0", "UINT4", "INT4", "FLOAT4E2M1", "UINT2", "INT2"}
#: element types graphdl has no dtype for; cases using them are skipped with this reason
MISSING_TYPES: set[str] = set()
#: case name (or a regular expression over names) -> why it is skipped
SKIPPED: dict[str, str] = {}


def _elem_code(tp: onnx.TypeProto) -> int:
    """The tensor element type inside a (sequence or optional) type, 0 if none."""
    while not tp.HasField("tensor_type"):
        if tp.HasField("sequence_type"):
            tp = tp.sequence_type.elem_type
        elif tp.HasField("optional_type"):
            tp = tp.optional_type.elem_type
        else:
            return 0
    return tp.tensor_type.elem_type


def _type_names(model: onnx.ModelProto) -> set[str]:
    """The element types of a model's inputs, outputs and Cast targets."""
    g = model.graph
    codes = {_elem_code(v.type) for v in list(g.input) + list(g.output)}
    codes |= {a.i for n in g.node for a in n.attribute if n.op_type == "Cast" and a.name == "to"}
    return {onnx.TensorProto.DataType.Name(c) for c in codes if c}


def _random(case) -> bool:
    """Whether the expected outputs come from a random generator: Dropout really dropping, or
    a random op (Bernoulli's expansion draws with RandomUniformLike; engines' streams differ)."""
    for node in case.model.graph.node:
        if node.op_type.startswith("Random"):
            return True
        if node.op_type != "Dropout":
            continue
        feeds = _feeds(case)
        training = feeds.get(node.input[2]) if len(node.input) > 2 else None
        ratio = feeds.get(node.input[1], 0.5) if len(node.input) > 1 else 0.5
        if training is not None and bool(training) and float(ratio) != 0.0:
            return True
    return False


def _feeds(case) -> dict[str, np.ndarray]:
    """The inputs by name; a sequence input is a list of arrays, an absent optional None."""
    inputs = case.data_sets[0][0]
    arrays = [numpy_helper.to_array(a) if isinstance(a, onnx.TensorProto)
              else [np.asarray(x) for x in a] if isinstance(a, list)
              else None if a is None else np.asarray(a) for a in inputs]
    return dict(zip([i.name for i in case.model.graph.input], arrays))


def _cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = collect_testcases(None)
    scope = set(import_table()) | set(NAMED_OPS)
    return [c for c in cases if {n.op_type for n in c.model.graph.node} <= scope
            and not _type_names(c.model) & EXCLUDED_TYPES and not _random(c)]


CASES = _cases()


def _skip_reason(case) -> str | None:
    missing = sorted({n.op_type for n in case.model.graph.node} - set(import_table()))
    if missing:
        return "; ".join(f"op {op} not yet in graphdl (issue {NAMED_OPS.get(op, 7)})"
                         for op in missing)
    lacking = sorted(_type_names(case.model) & MISSING_TYPES)
    if lacking:
        return f"graphdl has no dtype for {', '.join(lacking)}"
    for pattern, why in SKIPPED.items():
        if re.fullmatch(pattern, case.name):
            return why
    return None


def _assert_close(case, name: str, got: np.ndarray, want) -> None:
    want = numpy_helper.to_array(want) if isinstance(want, onnx.TensorProto) else want
    assert got.dtype == want.dtype, f"{case.name}: {name}"
    assert got.shape == want.shape, f"{case.name}: {name}"
    if want.dtype.kind == "O":  # strings: exactly equal
        np.testing.assert_array_equal(got, want, err_msg=f"{case.name}")
        return
    np.testing.assert_allclose(got, want, rtol=case.rtol, atol=max(case.atol, 1e-6),
                               err_msg=f"{case.name}: {name}")


def test_scope_and_skips_are_accounted_for():
    names = {c.name for c in CASES}
    assert len(CASES) >= 600
    for pattern in SKIPPED:
        assert any(re.fullmatch(pattern, n) for n in names), f"skip {pattern!r} matches no case"
    ops = {n.op_type for c in CASES for n in c.model.graph.node}
    assert set(NAMED_OPS) <= ops, f"named ops without cases: {set(NAMED_OPS) - ops}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backend_node_case(case):
    why = _skip_reason(case)
    if why:
        pytest.skip(why)
    model = case.model
    feeds, options = spread(_feeds(case))
    graph = gd.from_onnx(model, **options)
    got = gd.run(graph, feeds)
    made = gd.specialise(graph, feeds)  # a template's outputs are known once specialised
    seq_outputs = json.loads(made.metadata.get("graphdl.sequence_outputs", "{}"))
    for out, want in zip(model.graph.output, case.data_sets[0][1]):
        if not isinstance(want, list):
            _assert_close(case, out.name, got[out.name], want)
            continue
        names = seq_outputs[out.name]
        assert names == [f"{out.name}.{j}" for j in range(len(want))], case.name
        for name, arr in zip(names, want):
            _assert_close(case, name, got[name], arr)


def _lrn_by_the_spec(x: np.ndarray, size: int, alpha: float, beta: float,
                     bias: float) -> np.ndarray:
    """ONNX LRN as its definition words it, one channel at a time."""
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        lo = max(0, c - (size - 1) // 2)
        hi = min(x.shape[1] - 1, c + -(-(size - 1) // 2))
        square_sum = np.sum(x[:, lo:hi + 1] ** 2, axis=1)
        out[:, c] = x[:, c] / (bias + alpha / size * square_sum) ** beta
    return out


@pytest.mark.parametrize("size", [2, 4])
def test_lrn_even_size_matches_the_definition(size):
    """The backend cases use odd sizes only, onnxruntime refuses even ones, and
    onnx.reference's LRN loops over the batch axis instead of the channels (onnx 1.23), so
    even sizes are checked against the definition written out by hand."""
    node = onnx.helper.make_node("LRN", ["x"], ["y"], size=size, alpha=0.3, beta=0.6, bias=1.2)
    x_info = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 5, 3, 2])
    y_info = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 5, 3, 2])
    model = onnx.helper.make_model(onnx.helper.make_graph([node], "lrn", [x_info], [y_info]),
                                   opset_imports=[onnx.helper.make_opsetid("", 13)])
    x = np.random.default_rng(size).standard_normal((2, 5, 3, 2))
    want = _lrn_by_the_spec(x, size, 0.3, 0.6, 1.2)
    got = gd.run(gd.from_onnx(model), {"x": x.astype(np.float32)})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
