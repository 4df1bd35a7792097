"""Adding an op needs only its OpDef (docs/adding-an-op.md): a toy op registered here, with
nothing but its OpDef, is run in place by the interpreter, merged by elementwise fusion,
differentiated, exported to ONNX and imported back from it. References: NumPy's sinh and cosh
(the op's derivative), and onnxruntime's own Sinh kernel."""
import numpy as np
import onnx
import pytest
from onnx import helper

import graphdl as gd
import passes
from graphdl.engine.interpreter import Plan
from graphdl.ops.common import unary_infer
from passes import ElementwiseFusion, PassManager


def _sinh_vjp(b, call, gys):
    x = call.inputs[0]
    return [gys[0] * ((gd.exp(x) + gd.exp(-x)) * 0.5)]  # cosh(x)


@pytest.fixture
def toy():
    """toy_sinh: ONNX Sinh, one to one; its OpDef is all there is of it."""
    op = gd.register(gd.OpDef("toy_sinh", unary_infer, (1, 1), kernel=np.sinh, vjp=_sinh_vjp,
                              onnx_type="Sinh", inplace=np.sinh, fresh=True,
                              traits={"elementwise"}))
    yield op
    gd.core.registry.unregister("toy_sinh")


def _graph():
    b = gd.GraphBuilder("toy")
    x = b.input("x", ["N", 3])
    y = b.apply1("toy_sinh", [gd.exp(x)])  # exp's fresh buffer dies at toy_sinh
    return b.build({"y": y, "loss": gd.reduce_sum(b.apply1("toy_sinh", [x * 2.0]) + 1.0)})


def _x():
    return np.random.default_rng(0).standard_normal((4, 3))


def test_a_toy_op_runs_in_place_in_the_interpreter(toy):
    plan = Plan(_graph())
    out = plan({"x": _x().astype(np.float32)})
    np.testing.assert_allclose(out["y"], np.sinh(np.exp(_x())), rtol=1e-5)
    (step,) = [k for k, st in enumerate(plan.steps) if st.node.op == "toy_sinh"
               and st.node.inputs[0].name.startswith("exp")]
    (line,) = [ln for ln in plan.source.splitlines() if f" k{step}(" in ln]
    assert "out=" in line  # written into exp's dying buffer
    assert plan.n_inplace >= 1


def test_a_toy_op_is_fused_and_differentiated(toy):
    fused = PassManager([ElementwiseFusion()]).run(_graph()).graph
    bodies = [n.attrs["body"] for n in fused.nodes if n.op == "fused_elementwise"]
    assert any(ins[0] == "toy_sinh" for body in bodies for ins in body)
    x = _x()
    got = gd.run(fused, {"x": x.astype(np.float32)})
    np.testing.assert_allclose(got["loss"], np.sum(np.sinh(2 * x) + 1), rtol=1e-5)
    gg = passes.grad(_graph(), "loss", ["x"])
    (gx,) = [v for k, v in gd.run(gg, {"x": x.astype(np.float32)}).items() if k == "x_grad"]
    np.testing.assert_allclose(gx, 2 * np.cosh(2 * x), rtol=1e-5)


def test_a_toy_op_exports_to_its_onnx_op_and_imports_back(toy):
    model = gd.to_onnx(_graph())
    onnx.checker.check_model(model, full_check=True)
    assert "Sinh" in {n.op_type for n in model.graph.node}
    x = _x().astype(np.float32)
    ort = gd.run(_graph(), {"x": x}, backend="ort")
    np.testing.assert_allclose(ort["y"], np.sinh(np.exp(x)), rtol=1e-5)
    node = helper.make_node("Sinh", ["x"], ["y"])
    m = helper.make_model(helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [4, 3])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [4, 3])]),
        opset_imports=[helper.make_opsetid("", 17)])
    g = gd.from_onnx(m)
    assert [n.op for n in g.nodes] == ["toy_sinh"]
    np.testing.assert_allclose(gd.run(g, {"x": x})["y"], np.sinh(x), rtol=1e-6)


def test_register_refuses_contradicting_facts():
    with pytest.raises(ValueError, match="fresh"):
        gd.register(gd.OpDef("toy_bad", unary_infer, (1, 1), kernel=np.sinh, vjp=_sinh_vjp,
                             onnx_type="Sinh", inplace=np.sinh, traits={"elementwise"}))
    with pytest.raises(ValueError, match="mask"):
        gd.register(gd.OpDef("toy_bad", unary_infer, (1, 1), kernel=np.sinh, vjp=_sinh_vjp,
                             onnx_type="Sinh", mask=(3, "rate")))
    assert "toy_bad" not in gd.all_ops()
