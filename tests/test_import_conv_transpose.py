"""ConvTranspose's output_shape and SAME auto_pad, imported as explicit pads (and zero padding
of the output where the requested output is larger), against onnx's reference implementation
of the spec: odd and even total paddings, both SAME variants, strides, dilations, a bias, 1-D
and 2-D."""
import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import graphdl as gd


def _model(x_shape, w_shape, bias: bool = False, **attrs) -> onnx.ModelProto:
    ins = ["x", "w", "b"] if bias else ["x", "w"]
    node = helper.make_node("ConvTranspose", ins, ["y"], **attrs)
    f = onnx.TensorProto.FLOAT
    shapes = [x_shape, w_shape, [w_shape[1]]]
    graph = helper.make_graph([node], "ct", [helper.make_tensor_value_info(n, f, s)
                                             for n, s in zip(ins, shapes)],
                              [helper.make_tensor_value_info("y", f, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


CASES = [
    ("same_upper_s2", (1, 2, 4, 5), (2, 3, 3, 3), dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    ("same_lower_s2", (1, 2, 4, 5), (2, 3, 3, 3), dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    ("same_lower_s3_k4", (2, 1, 3, 4), (1, 2, 4, 2),
     dict(auto_pad="SAME_LOWER", strides=[3, 2], kernel_shape=[4, 2])),
    ("same_upper_dilated", (1, 1, 5, 4), (1, 1, 3, 2),
     dict(auto_pad="SAME_UPPER", strides=[2, 1], dilations=[2, 3])),
    ("output_shape_odd_total", (1, 1, 3, 3), (1, 2, 3, 3),
     dict(strides=[3, 2], output_shape=[10, 6])),
    ("output_shape_same_lower", (1, 1, 3, 3), (1, 2, 3, 3),
     dict(strides=[3, 2], output_shape=[9, 6], auto_pad="SAME_LOWER")),
    ("output_shape_larger", (1, 1, 3, 3), (1, 2, 3, 3),
     dict(strides=[3, 2], output_shape=[11, 8])),
    ("output_shape_grouped_1d", (1, 4, 5), (4, 1, 3),
     dict(strides=[2], group=2, output_shape=[10])),
    ("output_shape_larger_with_bias", (1, 1, 3, 3), (1, 2, 3, 3),
     dict(strides=[3, 2], output_shape=[11, 8], auto_pad="SAME_UPPER")),
]
#: cases onnx's ReferenceEvaluator cannot run (its col2im refuses an odd total padding and some
#: larger outputs; it has no groups): onnxruntime is the reference there
ORT_REFERENCE = {"output_shape_odd_total", "output_shape_grouped_1d",
                 "output_shape_larger_with_bias"}


@pytest.mark.parametrize("name,x_shape,w_shape,attrs", CASES, ids=[c[0] for c in CASES])
def test_conv_transpose_output_shape_and_auto_pad_follow_the_spec(name, x_shape, w_shape,
                                                                   attrs):
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    feeds = {"x": x, "w": w}
    bias = name.endswith("with_bias")
    if bias:
        feeds["b"] = rng.standard_normal(w_shape[1]).astype(np.float32)
    model = _model(x_shape, w_shape, bias, **attrs)
    if name in ORT_REFERENCE:
        ort = pytest.importorskip("onnxruntime")
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        want = sess.run(None, feeds)[0]
    else:
        want = ReferenceEvaluator(model).run(None, feeds)[0]
    if "output_shape" in attrs:
        assert want.shape[2:] == tuple(attrs["output_shape"])
    got = gd.run(gd.from_onnx(model), feeds)["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
