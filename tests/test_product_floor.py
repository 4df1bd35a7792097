"""The realistic benchmark's floor (benchmarks/product_floor.py): the step's products cut out
with the values they read in the step, checked against NumPy and torch computing the same
products from those values, and against the batch and weights the step was fed."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from benchmarks import realistic_models as rm
from benchmarks.product_floor import PRODUCTS, products_only
from graphdl.onnx.opsets import installed_ort_target


def _cut_and_run(step, batch):
    model = step.to_onnx(target=installed_ort_target())
    feeds = {**step.initial, **step.hyperparam_feeds(), **batch}
    cut, vals = products_only(model, feeds)
    sess = ort.InferenceSession(cut.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, vals)))
    return model, cut, vals, outs


def test_mlp_products_read_the_steps_batch_and_weights():
    step = rm.mlp_step((12, 8, 5))
    rng = np.random.default_rng(0)
    batch = {"x": rng.standard_normal((6, 12)).astype(np.float32),
             "y": rng.integers(0, 5, 6).astype(np.int64)}
    model, cut, vals, outs = _cut_and_run(step, batch)
    assert [n.op_type for n in cut.graph.node] == \
        [n.op_type for n in model.graph.node if n.op_type in PRODUCTS]
    first = cut.graph.node[0]  # the forward's first layer: the batch times dense1.W
    assert list(first.input) == ["x", "dense1.W"]
    np.testing.assert_array_equal(vals["x"], batch["x"])
    np.testing.assert_array_equal(vals["dense1.W"], step.initial["dense1.W"])
    for n in cut.graph.node:
        assert n.op_type == "MatMul", n.op_type
        np.testing.assert_allclose(outs[n.output[0]], vals[n.input[0]] @ vals[n.input[1]],
                                   rtol=1e-5, atol=1e-6)


def test_resnet_convolutions_match_torch_on_their_step_values():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    step = rm.resnet_step((4, 8, 8), 8, 1)
    rng = np.random.default_rng(1)
    batch = {"x": rng.standard_normal((3, 3, 8, 8)).astype(np.float32),
             "y": rng.integers(0, 10, 3).astype(np.int64)}
    _, cut, vals, outs = _cut_and_run(step, batch)
    kinds = [n.op_type for n in cut.graph.node]
    assert kinds.count("Conv") == 9 and kinds.count("ConvTranspose") == 8  # no stem dx
    for n in cut.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose"):
            continue
        a = {x.name: list(x.ints) or x.i for x in n.attribute}
        x, w = (torch.from_numpy(vals[i]) for i in n.input[:2])
        pads = a.get("pads", [0, 0, 0, 0])
        assert pads[:2] == pads[2:], pads  # symmetric, as torch takes them
        kw = dict(stride=a.get("strides", 1), padding=pads[:2], groups=a.get("group", 1),
                  dilation=a.get("dilations", 1))
        if n.op_type == "Conv":
            want = F.conv2d(x, w, **kw)
        else:
            want = F.conv_transpose2d(x, w, output_padding=a.get("output_padding", 0), **kw)
        np.testing.assert_allclose(outs[n.output[0]], want.numpy(), rtol=1e-4, atol=1e-5)


def test_a_model_without_products_is_refused():
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "relu_only",
                          [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("b", TensorProto.FLOAT, [2])])
    with pytest.raises(ValueError, match="relu_only.*no MatMul"):
        products_only(helper.make_model(g), {"a": np.ones(2, np.float32)})
