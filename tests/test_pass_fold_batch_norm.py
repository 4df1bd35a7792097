"""FoldBatchNorm: inference batch norm with frozen statistics folded into the conv before it
(or into one scale-and-shift), equal to the unfolded graph up to rounding; never folded when
the statistics are graph inputs or the batch norm is a training one."""
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import graphdl as gd
import passes
from passes import DeadCodeElimination, PassManager
from passes.fold_batch_norm import FoldBatchNorm


def _stats(rng: np.random.Generator, c: int, dtype=np.float64) -> list[np.ndarray]:
    """gamma, beta, mean, var: random, var positive and spread over two decades."""
    return [rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype),
            rng.standard_normal(c).astype(dtype), rng.uniform(0.05, 5.0, c).astype(dtype)]


def _conv_bn(bias: bool, group: int = 1, stats_as_inputs: bool = False,
             train: bool = False) -> gd.Graph:
    rng = np.random.default_rng(7)
    b = gd.GraphBuilder("conv_bn")
    x = b.input("x", ["N", 4, 9, 8], "float64")
    w = b.param("w", rng.standard_normal((6, 4 // group, 3, 3)))
    c = b.param("c", rng.standard_normal(6)) if bias else None
    y = gd.conv(x, w, c, strides=(2, 1), pads=(1, 0, 1, 1), group=group)
    names = ["gamma", "beta", "mean", "var"]
    if stats_as_inputs:
        stats = [b.input(n, [6], "float64") for n in names]
    else:
        stats = [b.param(n, v) for n, v in zip(names, _stats(rng, 6))]
    if train:
        y, m, v = gd.batch_norm_train(gd.relu(y), *stats, momentum=0.2, eps=1e-3)
        return b.build({"y": y, "m": m, "v": v})
    return b.build({"y": gd.relu(gd.batch_norm(y, *stats, eps=1e-3))})


def _fold(g: gd.Graph) -> gd.Graph:
    return PassManager([FoldBatchNorm(), DeadCodeElimination()]).run(g).graph


def _x(shape=(2, 4, 9, 8), seed=1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("bias,group", [(False, 1), (True, 1), (True, 2)])
def test_folded_into_conv_equals_unfolded(bias, group):
    g = _conv_bn(bias, group)
    out = _fold(g)
    assert [n.op for n in out.nodes] == ["conv", "relu"]
    conv = out.nodes[0]
    assert len(conv.inputs) == 3 and all(v in out.initializers for v in conv.inputs[1:])
    assert set(out.params) == {conv.inputs[1].name, conv.inputs[2].name}  # old ones dropped
    feeds = {"x": _x()}
    want = gd.run(g, feeds)["y"]
    np.testing.assert_allclose(gd.run(out, feeds)["y"], want, rtol=1e-12, atol=1e-12)


def _bn_after_relu(dtype=np.float64) -> gd.Graph:
    rng = np.random.default_rng(3)
    b = gd.GraphBuilder("bn_relu")
    x = b.input("x", ["N", 5, 4, 4], np.dtype(dtype).name)
    stats = [b.param(n, v) for n, v in zip(["g", "b", "m", "v"], _stats(rng, 5, dtype))]
    return b.build({"y": gd.relu(gd.batch_norm(gd.relu(x), *stats))})


def test_batch_norm_elsewhere_becomes_scale_and_shift():
    g = _bn_after_relu()
    out = _fold(g)
    assert [n.op for n in out.nodes] == ["relu", "mul", "add", "relu"]
    feeds = {"x": _x((3, 5, 4, 4))}
    np.testing.assert_allclose(gd.run(out, feeds)["y"], gd.run(g, feeds)["y"], rtol=1e-12,
                               atol=1e-12)


def test_conv_output_read_twice_is_not_folded_into_the_conv():
    b = gd.GraphBuilder("twice")
    x = b.input("x", ["N", 4, 9, 8], "float64")
    rng = np.random.default_rng(2)
    y = gd.conv(x, b.param("w", rng.standard_normal((6, 4, 3, 3))), pads=1)
    stats = [b.param(n, v) for n, v in zip(["g", "b", "m", "v"], _stats(rng, 6))]
    g = b.build({"bn": gd.batch_norm(y, *stats), "raw": y})
    out = _fold(g)
    assert [n.op for n in out.nodes] == ["conv", "mul", "add"]
    feeds = {"x": _x()}
    want, got = gd.run(g, feeds), gd.run(out, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_statistics_that_are_graph_inputs_are_not_folded():
    g = _conv_bn(True, stats_as_inputs=True)
    res = PassManager([FoldBatchNorm()]).run(g)
    assert not res.changed and "batch_norm" in [n.op for n in res.graph.nodes]


def test_training_batch_norm_is_never_folded():
    g = _conv_bn(True, train=True)
    assert not PassManager([FoldBatchNorm()]).run(g).changed
    opt = passes.optimize(g)
    assert "batch_norm_train" in [n.op for n in opt.nodes]
    feeds = {"x": _x()}
    want, got = gd.run(g, feeds), gd.run(opt, feeds)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)


def _onnx_conv_bn(rng: np.random.Generator) -> onnx.ModelProto:
    """Conv (no bias) -> BatchNormalization -> Relu -> BatchNormalization, float32, opset 15."""
    inits = [numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                                     "w")]
    for prefix in ("bn1", "bn2"):
        inits += [numpy_helper.from_array(a, f"{prefix}_{n}")
                  for n, a in zip("sbmv", _stats(rng, 8, np.float32))]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c"] + [f"bn1_{n}" for n in "sbmv"],
                              ["n1"], epsilon=1e-4),
             helper.make_node("Relu", ["n1"], ["r"]),
             helper.make_node("BatchNormalization", ["r"] + [f"bn2_{n}" for n in "sbmv"],
                              ["y"])]
    graph = helper.make_graph(
        nodes, "conv_bn", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                         [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 8, 10, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])


def test_imported_model_optimised_matches_onnxruntime():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(5)
    model = _onnx_conv_bn(rng)
    g = passes.optimize(gd.from_onnx(model))
    assert "batch_norm" not in [n.op for n in g.nodes]
    x = rng.standard_normal((1, 3, 10, 10)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(["y"], {"x": x})[0]
    got = gd.run(g, {"x": x})["y"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_channel_scale_and_shift_after_a_conv_fold_into_it():
    """Caffe2's batch norm exports as BatchNormalization, then Mul and Add by unsqueezed
    per-channel vectors: all three fold into the conv; a spatially varying factor does not."""
    rng = np.random.default_rng(4)
    b = gd.GraphBuilder("conv_bn_mul_add")
    x = b.input("x", ["N", 4, 9, 8], "float64")
    y = gd.conv(x, b.param("w", rng.standard_normal((6, 4, 3, 3))), pads=1)
    stats = [b.param(n, v) for n, v in zip(["g", "b", "m", "v"], _stats(rng, 6))]
    y = gd.batch_norm(y, *stats)
    y = y * gd.unsqueeze(b.param("sc", rng.standard_normal(6)), (1, 2))
    y = gd.unsqueeze(b.param("sh", rng.standard_normal(6)), (1, 2)) + y
    z = gd.conv(gd.relu(y), b.param("w2", rng.standard_normal((3, 6, 1, 1))))
    z = z * b.param("map", rng.standard_normal((9, 8)))  # varies over space: stays a mul
    g = b.build({"z": z})
    out = _fold(g)
    assert [n.op for n in out.nodes] == ["conv", "relu", "conv", "mul"]
    feeds = {"x": _x()}
    np.testing.assert_allclose(gd.run(out, feeds)["z"], gd.run(g, feeds)["z"], rtol=1e-11,
                               atol=1e-11)


def test_channel_scale_and_shift_after_a_lone_batch_norm_merge_into_one():
    """DenseNet's batch norms after a concat, each followed by Mul and Add: one x * s + t."""
    rng = np.random.default_rng(6)
    b = gd.GraphBuilder("bn_mul_add")
    x = b.input("x", ["N", 5, 4, 4], "float64")
    stats = [b.param(n, v) for n, v in zip(["g", "b", "m", "v"], _stats(rng, 5))]
    y = gd.batch_norm(gd.concat([gd.relu(x), x], 1)[:, 2:7], *stats)
    y = y * gd.unsqueeze(b.param("sc", rng.standard_normal(5)), (1, 2))
    y = y + gd.unsqueeze(b.param("sh", rng.standard_normal(5)), (1, 2))
    g = b.build({"y": gd.relu(y * 0.5)})
    out = _fold(g)
    assert [n.op for n in out.nodes][-3:] == ["mul", "add", "relu"]
    assert len(out.params) == 2
    feeds = {"x": _x((3, 5, 4, 4))}
    np.testing.assert_allclose(gd.run(out, feeds)["y"], gd.run(g, feeds)["y"], rtol=1e-12,
                               atol=1e-12)
