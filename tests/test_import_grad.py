"""Gradients of imported ONNX models: ``passes.grad`` w.r.t. initializers and graph inputs,
checked against central finite differences along random directions in float64.

One model routes its values through shape plumbing (Shape, Gather, Concat, Reshape, Expand) and
the ops the importer adds (Split, Pad, Tile, LRN, PRelu, Softmax before opset 13); the other is
the light ResNet-50 from the onnx wheel with random float64 weights.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphdl as gd
import passes
from tests.test_onnx_backend_models import light_input, light_model, randomise

F64 = TensorProto.DOUBLE
RNG = np.random.default_rng(7)


def _i64(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _f64(name: str, shape) -> onnx.TensorProto:
    return numpy_helper.from_array(RNG.standard_normal(shape), name)


def plumbing_model(opset: int, lrn: bool = True) -> onnx.ModelProto:
    """x [N, 4, 6] -> MatMul/Add -> Reshape to [N, 20] via Shape/Gather/Concat -> times an
    Expand-ed row -> Split -> Pad/Tile -> Concat -> LRN (or not: onnxruntime has no float64
    LRN) -> PRelu -> Softmax -> weighted sum. Before opset 13, Split's sizes and Squeeze's
    and Unsqueeze's axes are attributes (their schemas there take one input)."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h0"]),
        helper.make_node("Add", ["h0", "b"], ["h"]),
        helper.make_node("Shape", ["h"], ["hs"]),
        helper.make_node("Gather", ["hs", "zero"], ["n"], axis=0),
        helper.make_node("Concat", ["n", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["h", "target"], ["r"]),
        helper.make_node("Shape", ["r"], ["rs"]),
        helper.make_node("Expand", ["c", "rs"], ["ce"]),
        helper.make_node("Mul", ["r", "ce"], ["m"]),
        helper.make_node("Split", ["m", "sizes"], ["s1", "s2"], axis=1) if opset >= 13
        else helper.make_node("Split", ["m"], ["s1", "s2"], axis=1, split=[12, 8]),
        helper.make_node("Pad", ["s1", "pads"], ["p1"], mode="reflect"),
        helper.make_node("Tile", ["s2", "reps"], ["t2"]),
        helper.make_node("Concat", ["p1", "t2"], ["cat"], axis=1),
        helper.make_node("Unsqueeze", ["cat", "axes23"], ["cat4"]) if opset >= 13
        else helper.make_node("Unsqueeze", ["cat"], ["cat4"], axes=[2, 3]),
        helper.make_node("LRN", ["cat4"], ["l4"], size=3, alpha=0.5, beta=0.75, bias=1.5)
        if lrn else helper.make_node("Identity", ["cat4"], ["l4"]),
        helper.make_node("Squeeze", ["l4", "axes23"], ["l"]) if opset >= 13
        else helper.make_node("Squeeze", ["l4"], ["l"], axes=[2, 3]),
        helper.make_node("PRelu", ["l", "slope"], ["pr"]),
        helper.make_node("Softmax", ["pr"], ["sm"], axis=1),
        helper.make_node("Mul", ["sm", "weights"], ["ws"]),
        helper.make_node("ReduceSum", ["ws"], ["loss"], keepdims=0),
    ]
    inits = [_f64("W", (6, 5)), _f64("b", (5,)), _f64("c", (1, 20)), _f64("slope", (30,)),
             _f64("weights", (30,)), _i64("zero", [0]), _i64("minus1", [-1]),
             _i64("sizes", [12, 8]), _i64("pads", [0, 1, 0, 1]), _i64("reps", [1, 2]),
             _i64("axes23", [2, 3])]
    graph = helper.make_graph(nodes, "plumbing",
                              [helper.make_tensor_value_info("x", F64, ["N", 4, 6])],
                              [helper.make_tensor_value_info("loss", F64, [])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _with_params(g: gd.Graph, params: dict[str, np.ndarray]) -> gd.Graph:
    inits = {v: params.get(v.name, a) for v, a in g.initializers.items()}
    return dataclasses.replace(g, initializers=inits)


def directional_error(g: gd.Graph, grads: dict, loss: str, feeds: dict,
                      direction: dict[str, np.ndarray], eps: float) -> float:
    """The relative difference between <grad, d> and the central difference
    (L(p + eps d) - L(p - eps d)) / 2 eps, for a direction d over initializers and inputs."""
    base = {**g.params, **feeds}
    analytic = sum(float(np.sum(grads[f"{k}_grad"] * d)) for k, d in direction.items())

    def loss_at(step: float) -> float:
        moved = {k: base[k] + step * d for k, d in direction.items()}
        run_feeds = {k: moved.get(k, v) for k, v in feeds.items()}
        return float(gd.run(_with_params(g, moved), run_feeds)[loss])

    numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    assert abs(numeric) > 1e-6, "a zero gradient would make this check vacuous"
    return abs(analytic - numeric) / abs(numeric)


def check_against_finite_differences(g: gd.Graph, loss: str, feeds: dict, wrt: list[str],
                                     eps: float, rtol: float) -> None:
    grads = gd.run(passes.grad(g, loss, wrt), feeds)
    base = {**g.params, **feeds}
    direction = {k: RNG.standard_normal(np.shape(base[k])) for k in wrt}
    assert directional_error(g, grads, loss, feeds, direction, eps) < rtol


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_gradient_through_shape_plumbing_matches_finite_differences(opset):
    g = gd.from_onnx(plumbing_model(opset))
    feeds = {"x": RNG.standard_normal((3, 4, 6))}
    check_against_finite_differences(g, "loss", feeds, ["W", "b", "c", "slope", "x"],
                                     eps=1e-5, rtol=1e-6)


def test_gradient_graph_of_an_imported_model_runs_in_onnxruntime():
    pytest.importorskip("onnxruntime")
    g = gd.from_onnx(plumbing_model(13, lrn=False))
    gg = passes.grad(g, "loss", ["W", "c", "x"])
    feeds = {"x": RNG.standard_normal((2, 4, 6))}
    want = gd.run(gg, feeds)
    got = gd.run(gg, feeds, backend="ort")
    for k in ("loss", "W_grad", "c_grad", "x_grad"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-9, atol=1e-12, err_msg=k)


def _summed(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with a scalar output: its output weighted by fixed random values, summed (the
    plain sum of a softmax is constantly 1)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    out = m.graph.output[0]
    shape = [d.dim_value for d in out.type.tensor_type.shape.dim]
    mix = np.random.default_rng(5).uniform(0, 1000, shape)
    m.graph.initializer.append(numpy_helper.from_array(mix, "mix"))
    m.graph.node.extend([helper.make_node("Mul", [out.name, "mix"], ["mixed"]),
                         helper.make_node("ReduceSum", ["mixed"], ["loss"], keepdims=0)])
    m.graph.output.append(helper.make_tensor_value_info("loss", F64, []))
    return m


def frozen_kinks(model: onnx.ModelProto, g: gd.Graph, feeds: dict) -> gd.Graph:
    """The model with its kinks frozen where they are at the current parameters: each Relu
    becomes a multiply by its fixed 0/1 mask, each MaxPool a Gather of its fixed argmax. It
    equals the model, and has the same gradient, at these parameters, and is analytic around
    them, so central differences on it are exact to O(eps^2): on ResNet-50 any step crosses
    some of its ~10M kinks (~200 at 1e-6), which leaves raw differences off by ~1e-4."""
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    pools = [n for n in model.graph.node if n.op_type == "MaxPool"]
    by_name = {v.name: v for n in g.nodes for v in n.outputs}
    watched = [by_name[n.input[0]] for n in relus]
    watched += [next(m.outputs[1] for m in g.nodes if m.outputs[0].name == n.output[0])
                for n in pools]
    at = gd.run(dataclasses.replace(g, outputs=watched), feeds)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = []
    for n in m.graph.node:
        if n.op_type == "Relu":
            mask = (at[n.input[0]] > 0).astype(np.float64)
            m.graph.initializer.append(numpy_helper.from_array(mask, f"{n.output[0]}.mask"))
            nodes.append(helper.make_node("Mul", [n.input[0], f"{n.output[0]}.mask"],
                                          list(n.output)))
        elif n.op_type == "MaxPool":
            idx = at[watched[len(relus) + pools.index(n)].name]
            m.graph.initializer.extend([numpy_helper.from_array(idx, f"{n.output[0]}.argmax"),
                                        numpy_helper.from_array(np.array([-1]), "flat.shape")])
            flat = f"{n.output[0]}.flat"
            nodes += [helper.make_node("Reshape", [n.input[0], "flat.shape"], [flat]),
                      helper.make_node("Gather", [flat, f"{n.output[0]}.argmax"],
                                       [n.output[0]])]
        else:
            nodes.append(n)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return gd.from_onnx(m)


def test_resnet50_gradient_wrt_initializers_matches_finite_differences():
    """Random directions (fixed seeds) over the 54 conv and Gemm weights and over the 213
    vectors (biases, batch norm scales, shifts and statistics): <grad, d> of the model matches
    central differences (step 1e-6) of the model with its kinks frozen (``frozen_kinks``) at
    rtol 1e-5; raw central differences of the model itself (step 1e-7) agree only to ~1e-4
    (kink crossings and round-off), which a last, looser check confirms."""
    model = _summed(randomise(light_model("resnet50"), seed=1, dtype=np.float64))
    g = gd.from_onnx(model)
    feeds = light_input(model, np.float64)
    wrt = [v.name for v, a in g.initializers.items() if a.dtype == np.float64 and v.name != "mix"]
    assert len(wrt) > 250
    grads = gd.run(passes.grad(g, "loss", wrt), feeds)
    frozen = frozen_kinks(model, g, feeds)

    rng = np.random.default_rng(12)
    weights = [k for k in wrt if g.params[k].ndim >= 2]
    vectors = [k for k in wrt if g.params[k].ndim < 2]
    for names in (weights, vectors):
        d = {k: rng.standard_normal(g.params[k].shape) for k in names}
        err = directional_error(frozen, grads, "loss", feeds, d, 1e-6)
        assert err < 1e-5, (len(names), err)  # measured 4e-10 (it falls as eps^2 from 1e-3)
    d = {k: rng.standard_normal(g.params[k].shape) for k in wrt}  # the model itself, loosely
    assert directional_error(g, grads, "loss", feeds, d, 1e-7) < 1e-3
