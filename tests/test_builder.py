"""The builder DSL: types inferred at each op, errors at the user's own line, no implicit
promotion, stable printing."""
import numpy as np
import pytest

import graphdl as gd
from graphdl.core.verify import verify


def test_shape_error_names_op_shapes_and_user_line():
    b = gd.GraphBuilder()
    x = b.input("x", ["N", 4])
    w = b.param("w", np.zeros((5, 2), np.float32))
    with pytest.raises(gd.ShapeError) as err:
        x @ w  # the line the message must point at
    msg = str(err.value)
    assert "matmul" in msg and "[N,4]" in msg and "[5,2]" in msg
    assert "test_builder.py:" in msg


def test_no_implicit_promotion_between_float32_and_float64():
    b = gd.GraphBuilder()
    x = b.input("x", [3], "float32")
    y = b.input("y", [3], "float64")
    with pytest.raises(gd.DTypeError, match="cast"):
        x + y
    assert (x + 1.5).dtype == gd.DType.float32  # a Python scalar takes the tensor's dtype
    assert (gd.cast(x, "float64") + y).dtype == gd.DType.float64


def test_printed_form_is_stable():
    b = gd.GraphBuilder("tiny")
    x = b.input("x", ["N", 3])
    w = b.param("w", np.ones((3, 2), np.float32))
    g = b.build({"y": gd.relu(x @ w)})
    assert str(g) == "\n".join([
        "graph tiny(",
        "    %x:f32[N,3],",
        "    %w:f32[3,2] = param,",
        ") {",
        "  %matmul_1:f32[N,2] = matmul(%x, %w)",
        "  %y:f32[N,2] = relu(%matmul_1)",
        "  return %y",
        "}",
    ])
    verify(g)


def test_output_naming_adds_identity_for_inputs_and_duplicates():
    b = gd.GraphBuilder()
    x = b.input("x", [2])
    y = gd.exp(x)
    g = b.build({"same": x, "e1": y, "e2": y})
    assert [v.name for v in g.outputs] == ["same", "e1", "e2"]
    out = gd.run(g, {"x": np.array([0.0, 1.0], np.float32)})
    np.testing.assert_allclose(out["e2"], np.exp([0.0, 1.0]), rtol=1e-6)
    np.testing.assert_array_equal(out["same"], [0.0, 1.0])


def test_duplicate_names_and_unknown_attrs_are_refused():
    b = gd.GraphBuilder()
    x = b.input("x", [2])
    with pytest.raises(gd.GraphError, match="already used"):
        b.input("x", [3])
    with pytest.raises(gd.GraphError, match="no attribute"):
        b.apply1("relu", [x], slope=2)


def test_indexing_matches_numpy_and_differentiates():
    import passes

    xv = np.arange(24.0).reshape(2, 3, 4)
    b = gd.GraphBuilder()
    x = b.input("x", [2, 3, 4], "float64")
    picks = {"a": x[1], "b": x[:, 1:3], "c": x[..., ::-2], "d": x[-1, :, -1], "e": x[0, ::2, 1:]}
    g = b.build(picks)
    out = gd.run(g, {"x": xv})
    want = {"a": xv[1], "b": xv[:, 1:3], "c": xv[..., ::-2], "d": xv[-1, :, -1],
            "e": xv[0, ::2, 1:]}
    for k, w in want.items():
        np.testing.assert_array_equal(out[k], w, err_msg=k)
        assert g.value(k).type.shape == w.shape
    gg = passes.grad(b.build({"s": gd.reduce_sum(x[-1, :, -1])}), "s", ["x"])
    expected = np.zeros_like(xv)
    expected[-1, :, -1] = 1
    np.testing.assert_array_equal(gd.run(gg, {"x": xv})["x_grad"], expected)
    assert x[1:2].type.shape == (1, 3, 4) and (x <= 2.0).dtype == gd.DType.bool
