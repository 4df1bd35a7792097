"""Opset and IR targeting: the example models export at every opset graphdl supports, each file
checker-clean and equal in onnxruntime to the interpreter; the IR version follows the opset;
the default is portable and rises only as far as a graph's ops need; a target runtime picks its
newest opset and IR; what an opset cannot express is refused by name."""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import graphdl as gd
import passes
from graphdl import optim
from graphdl.cli import main
from graphdl.onnx.opsets import (MIN_OPSET, NEWEST_OPSET, ORT_LIMITS, PORTABLE_OPSET,
                                 installed_ort_target, parse_target)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = ["mlp_digits", "cnn_digits", "sequence_digits"]
ALL_OPSETS = list(range(MIN_OPSET, NEWEST_OPSET + 1))


def example(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples",
                                                                     name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def feeds_for(g: gd.Graph, n: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Random feeds for every graph input (labels as valid class indices)."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in g.inputs:
        shape = [n if not isinstance(d, int) else d for d in v.type.shape]
        if v.type.dtype.np.kind == "i":
            out[v.name] = rng.integers(0, 10, shape).astype(v.type.dtype.np)
        else:
            out[v.name] = rng.random(shape).astype(v.type.dtype.np)
    return out


def ort_outputs(model: onnx.ModelProto, feeds: dict) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def assert_like_interpreter(g: gd.Graph, model: onnx.ModelProto, rtol: float = 1e-4) -> None:
    feeds = feeds_for(g)
    ours, theirs = gd.run(g, feeds), ort_outputs(model, feeds)
    for name, want in ours.items():
        np.testing.assert_allclose(theirs[name], want, rtol=rtol, atol=1e-5, err_msg=name)


def test_ir_version_is_the_lowest_that_carries_the_opset():
    """From onnx's release table: opset 13 came with IR 7, 17 with 8, 21 with 10, 28 with 14."""
    b = gd.GraphBuilder("t")
    g = b.build({"y": gd.relu(b.input("x", [2]))})
    for opset, ir in [(13, 7), (15, 8), (17, 8), (19, 9), (21, 10), (23, 11), (26, 13),
                      (28, 14)]:
        m = gd.to_onnx(g, opset=opset)
        assert (m.opset_import[0].version, m.ir_version) == (opset, ir)


@pytest.mark.parametrize("name", EXAMPLES)
def test_cli_export_at_every_opset_is_checker_clean_and_matches(name, tmp_path):
    g = example(name).model()
    path = os.path.join(ROOT, "examples", name + ".py") + ":model"
    for opset in ALL_OPSETS:
        out = str(tmp_path / f"{name}{opset}.onnx")
        assert main(["export", path, "-o", out, "--opset", str(opset)]) == 0
        model = onnx.load(out)
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version == opset
        assert_like_interpreter(g, model)


@pytest.mark.parametrize("name", ["mlp_digits", "cnn_digits"])
def test_gradient_graphs_and_training_steps_at_every_opset(name):
    """The loss model's gradient graph and its Adam training step, at every opset: checker
    clean, and the same loss, gradients and next state as the interpreter."""
    lg = example(name).loss_model()
    gg = passes.grad(lg, "loss", [v.name for v in lg.initializers])
    step = passes.training_step(lg, optim.Adam(lr=0.01)).graph
    for opset in ALL_OPSETS:
        for g in (gg, step):
            model = gd.to_onnx(g, opset=opset)
            onnx.checker.check_model(model, full_check=True)
            assert_like_interpreter(g, model)


def test_default_is_portable_and_rises_only_as_far_as_ops_need():
    b = gd.GraphBuilder("t")
    plain = b.build({"y": gd.relu(b.input("x", [3, 4]))})
    assert PORTABLE_OPSET == 17
    m = gd.to_onnx(plain)
    assert (m.opset_import[0].version, m.ir_version) == (17, 8)
    b = gd.GraphBuilder("s")
    x, idx = b.input("x", [3, 4]), b.const(np.array([[0, 2], [1, 0]]))
    upd = b.input("u", [2, 2])
    g = b.build({"y": gd.scatter_reduce(x, idx, upd, axis=1, reduction="max")})
    m = gd.to_onnx(g)  # ScatterElements' max reduction came with opset 18
    assert (m.opset_import[0].version, m.ir_version) == (18, 8)
    assert_like_interpreter(g, m)
    with pytest.raises(gd.OnnxError, match=r"op scatter_reduce\).*'max' needs opset >= 18"):
        gd.to_onnx(g, opset=17)


def test_target_runtime_picks_its_newest_opset_and_ir():
    b = gd.GraphBuilder("t")
    g = b.build({"y": gd.relu(b.input("x", [2]))})
    m = gd.to_onnx(g, target="onnxruntime==1.30")
    assert (m.opset_import[0].version, m.ir_version) == (26, 13)
    m = gd.to_onnx(g, target="onnxruntime==1.14.1")
    assert (m.opset_import[0].version, m.ir_version) == (18, 8)
    for bad in ["onnxruntime==0.9", "tensorflow==2.0", "onnxruntime>=1.30"]:
        with pytest.raises(gd.OnnxError, match="target"):
            gd.to_onnx(g, target=bad)


def test_table_row_of_the_installed_onnxruntime_is_its_real_limit():
    """The installed onnxruntime loads a model at its row's opset and IR version and refuses
    one IR version more (so the row is neither too low nor too high)."""
    target = installed_ort_target()
    if target is None:
        pytest.skip(f"graphdl has no row for onnxruntime {ort.__version__}")
    opset, ir = parse_target(target)

    def loads(op: int, ir_version: int) -> bool:
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "p",
                              [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", op)])
        m.ir_version = ir_version
        try:
            ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            return True
        except Exception:  # noqa: BLE001 - onnxruntime's load failures have several types
            return False

    assert loads(opset, ir) and not loads(opset, ir + 1)
    if opset < NEWEST_OPSET:
        assert not loads(opset + 1, ir)


def test_cli_target_and_refusals_name_what_is_wrong(tmp_path, capsys):
    path = os.path.join(ROOT, "examples", "mlp_digits.py") + ":model"
    out = str(tmp_path / "m.onnx")
    assert main(["export", path, "-o", out, "--target", "onnxruntime==1.31"]) == 0
    m = onnx.load(out)
    assert (m.opset_import[0].version, m.ir_version) == ORT_LIMITS[(1, 31)]
    assert main(["export", path, "-o", out, "--target", "onnxruntime==9.9"]) == 2
    assert "onnxruntime==9.9" in capsys.readouterr().err
    assert main(["export", path, "-o", out, "--opset", str(MIN_OPSET - 1)]) == 2
    assert f"opset {MIN_OPSET - 1}" in capsys.readouterr().err


def test_training_step_saves_at_the_portable_default(tmp_path):
    lg = example("mlp_digits").loss_model()
    step = passes.training_step(lg, optim.SGD(lr=0.1))
    paths = step.save(str(tmp_path))
    m = onnx.load(paths["onnx"])
    assert (m.opset_import[0].version, m.ir_version) == (17, 8)
    paths = step.save(str(tmp_path / "t"), target="onnxruntime==1.30")
    assert onnx.load(paths["onnx"]).ir_version == 13
    assert json.load(open(paths["manifest"]))["loss"] == "loss"


def test_target_caps_random_graphs_at_onnxruntimes_random_ops():
    """onnxruntime implements RandomUniformLike only up to its opset-21 version."""
    from graphdl.ops.dropout import random_keep_mask

    b = gd.GraphBuilder("r")
    g = b.build({"m": random_keep_mask(b.input("x", [4]), 0.5, seed=1)})
    assert gd.to_onnx(g, target="onnxruntime==1.32").opset_import[0].version == 21
    assert gd.to_onnx(g, target="onnxruntime==1.18").opset_import[0].version == 21
    assert gd.to_onnx(g, target="onnxruntime==1.17").opset_import[0].version == 20
    assert gd.to_onnx(g).opset_import[0].version == PORTABLE_OPSET


def test_cli_grad_writes_the_portable_default_or_the_asked_opset(tmp_path):
    path = os.path.join(ROOT, "examples", "mlp_digits.py") + ":loss_model"
    for args, opset in (([], 17), (["--opset", "13"], 13), (["--target", "onnxruntime==1.30"], 26)):
        out = str(tmp_path / f"g{opset}.onnx")
        assert main(["grad", path, "-o", out, *args]) == 0
        m = onnx.load(out)
        onnx.checker.check_model(m, full_check=True)
        assert m.opset_import[0].version == opset
    assert main(["grad", path, "-o", out, "--opset", "13", "--target", "onnxruntime==1.30"]) == 2
