"""Inputs graphdl needs at import time (axes, pads, ...) fed at run time: the engines specialise
the graph on the values fed (graphdl/onnx/specialisation.py). References are NumPy's own reductions and
padding, and values derived by hand."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

import graphdl as gd
import graphdl.onnx.specialisation as sp
from graphdl.core.errors import FeedError, OnnxError

ENGINES = ["numpy", "ort"]


def _model(nodes, inputs, outputs, opset=18) -> onnx.ModelProto:
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info(*i) for i in inputs],
                         [h.make_tensor_value_info(*o) for o in outputs])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])


def _reduce_sum() -> onnx.ModelProto:
    node = h.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    return _model([node], [("x", T.FLOAT, [2, 3, 4]), ("axes", T.INT64, [None])],
                  [("y", T.FLOAT, None)], opset=13)


X = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7


@pytest.mark.parametrize("engine", ENGINES)
def test_axes_fed_at_run_time_match_numpy(engine):
    g = gd.from_onnx(_reduce_sum())
    assert isinstance(g, gd.SpecialisableGraph) and g.specialise_on == ["axes"]
    for axes in ([1], [0, 2], [-1]):
        got = gd.run(g, {"x": X, "axes": np.array(axes)}, backend=engine)["y"]
        np.testing.assert_allclose(got, X.sum(axis=tuple(axes)), rtol=1e-6)


def test_specialised_graphs_are_cached_by_value_least_recently_used_first():
    g = gd.from_onnx(_reduce_sum())
    first = gd.specialise(g, {"axes": np.array([0])})
    assert gd.specialise(g, {"axes": np.array([0])}) is first  # same values, same graph
    others = [[1], [2], [-1], [-2], [-3], [1, 2], [0, 1], [0, 2], [-1, 0]]
    for axes in others[:sp.CACHE_SIZE]:  # CACHE_SIZE other values push [0] out
        gd.specialise(g, {"axes": np.array(axes)})
    assert len(g.specialiser.cache) == sp.CACHE_SIZE
    assert gd.specialise(g, {"axes": np.array([0])}) is not first


def test_second_specialisation_input_is_found_when_the_first_is_bound():
    """Pad's constant value and its axes are both import-time inputs: the first import stops
    at one; specialising on it meets the other."""
    node = h.make_node("Pad", ["x", "pads", "value", "axes"], ["y"])
    model = _model([node], [("x", T.FLOAT, [2, 3]), ("pads", T.INT64, [2]),
                            ("value", T.FLOAT, []), ("axes", T.INT64, [1])],
                   [("y", T.FLOAT, None)])
    g = gd.from_onnx(model)
    feeds = {"x": X[0, :2, :3], "pads": np.array([1, 2]), "value": np.float32(-3.0),
             "axes": np.array([1])}
    for engine in ENGINES:
        got = gd.run(g, feeds, backend=engine)["y"]
        want = np.pad(X[0, :2, :3], [(0, 0), (1, 2)], constant_values=-3.0)
        np.testing.assert_array_equal(got, want)
    assert sorted(g.specialise_on) == ["axes", "value"]


def test_dropout_training_mode_fed_at_run_time():
    node = h.make_node("Dropout", ["x", "ratio", "mode"], ["y"])
    model = _model([node], [("x", T.FLOAT, [2, 3]), ("ratio", T.FLOAT, []),
                            ("mode", T.BOOL, [])], [("y", T.FLOAT, None)])
    g = gd.from_onnx(model)
    off = gd.run(g, {"x": X[0, :2, :3], "ratio": np.float32(0.5), "mode": np.array(False)})
    np.testing.assert_array_equal(off["y"], X[0, :2, :3])  # inference: the identity
    on = gd.run(g, {"x": X[0, :2, :3] + 1, "ratio": np.float32(0.5), "mode": np.array(True)})
    assert set(np.unique(on["y"] / (X[0, :2, :3] + 1))) <= {0.0, 2.0}  # kept ones scaled 2x


def test_constants_bind_inputs_at_import_and_are_checked():
    g = gd.from_onnx(_reduce_sum(), constants={"axes": np.array([2])})
    assert not isinstance(g, gd.SpecialisableGraph)
    assert [v.name for v in g.inputs] == ["x"]
    np.testing.assert_allclose(gd.run(g, {"x": X})["y"], X.sum(axis=2), rtol=1e-6)
    with pytest.raises(FeedError, match="'axes': expected dtype int64"):
        gd.from_onnx(_reduce_sum(), constants={"axes": np.array([2], np.int32)})
    with pytest.raises(OnnxError, match=r"constants names \['nope'\]"):
        gd.from_onnx(_reduce_sum(), constants={"nope": np.array([2])})


def test_template_needs_its_values_to_export_differentiate_or_run():
    g = gd.from_onnx(_reduce_sum())
    with pytest.raises(sp.NotSpecialisedError, match="axes.*export needs them"):
        gd.to_onnx(g)
    from passes import grad

    with pytest.raises(sp.NotSpecialisedError, match="differentiating needs them"):
        grad(g, "y", ["x"])
    with pytest.raises(FeedError, match=r"missing feed\(s\) \['axes'\]"):
        gd.run(g, {"x": X})
    with pytest.raises(FeedError, match="'axes': expected dtype int64"):
        gd.run(g, {"x": X, "axes": np.array([1.0])})


def test_cli_run_takes_the_value_as_a_feed(tmp_path, monkeypatch):
    from graphdl.tools import cli

    onnx.save(_reduce_sum(), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "axes.npy", np.array([0, 1]))
    monkeypatch.chdir(tmp_path)
    for engine in ENGINES:
        argv = ["run", "m.onnx", "--feed", "x=x.npy", "--feed", "axes=axes.npy",
                "--backend", engine, "-o", f"{engine}.npz"]
        assert cli.main(argv) == 0
        got = np.load(tmp_path / f"{engine}.npz")["y"]
        np.testing.assert_allclose(got, X.sum(axis=(0, 1)), rtol=1e-6)


def test_training_step_runner_takes_the_value_as_a_feed():
    """A hand-written step: loss = mean_i sum_j x_ij w_j, summed over the fed axes; its
    gradient in w is mean_i x_ij, so one SGD step moves w by -lr * x.mean(0)."""
    from graphdl.training.step_runner import NumpyRunner
    from graphdl.training.step import TrainStep

    nodes = [h.make_node("Mul", ["x", "w"], ["p"]),
             h.make_node("ReduceSum", ["p", "axes"], ["s"], keepdims=0),
             h.make_node("ReduceMean", ["s"], ["loss"], keepdims=0),
             h.make_node("ReduceMean", ["x"], ["g"], axes=[0], keepdims=0),
             h.make_node("Mul", ["lr", "g"], ["d"]),
             h.make_node("Sub", ["w", "d"], ["w.next"])]
    model = _model(nodes, [("x", T.FLOAT, [4, 3]), ("axes", T.INT64, [1]),
                           ("w", T.FLOAT, [3]), ("lr", T.FLOAT, [])],
                   [("loss", T.FLOAT, []), ("w.next", T.FLOAT, [3])], opset=13)
    manifest = {"loss": "loss", "metrics": [], "next_step": {"w.next": "w"}}
    w0 = np.array([1.0, -2.0, 0.5], np.float32)
    runner = NumpyRunner(TrainStep(gd.from_onnx(model), manifest, {"w": w0}))
    x = X[1].reshape(4, 3)
    lr = np.float32(0.1)
    report = runner({"x": x, "axes": np.array([1])}, {"lr": lr})
    assert report["loss"] == pytest.approx(float((x @ w0).mean()), rel=1e-6)
    np.testing.assert_allclose(runner.state["w"], w0 - lr * x.mean(0), rtol=1e-6)
