"""The ``graphdl`` command, run as a subprocess on files made in tmp_path: outputs checked
against onnxruntime and hand-derived gradients; user errors exit 2 with one line on stderr."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

MODEL_PY = textwrap.dedent("""\
    import numpy as np
    import graphdl as gd


    def model():
        b = gd.GraphBuilder("tiny")
        x = b.input("x", ["N", 3])
        w = b.param("w", np.arange(6, dtype=np.float32).reshape(3, 2) / 10)
        bias = b.param("bias", np.array([0.5, -0.5], np.float32))
        y = gd.tanh(x @ w + bias)
        return b.build({"y": y, "loss": gd.reduce_mean(y * y)})


    def two_losses():
        b = gd.GraphBuilder()
        x = b.input("x", [2])
        w = b.param("w", np.ones(2, np.float32))
        return b.build({"l1": gd.reduce_sum(x * w), "l2": gd.reduce_sum(x * w * w)})


    def no_scalar():
        b = gd.GraphBuilder()
        x = b.input("x", [2])
        w = b.param("w", np.ones(2, np.float32))
        return b.build({"y": x * w})


    def odd_names():
        b = gd.GraphBuilder()
        x = b.input("x", ["N", 3])
        return b.build({"file": x * 2.0, "allow_pickle": gd.reduce_sum(x), "a/b": x})


    def broken():
        b = gd.GraphBuilder()
        x = b.input("x", [2, 3])
        return b.build({"y": x @ x})


    def not_a_graph():
        return 42
""")
W = np.arange(6, dtype=np.float32).reshape(3, 2) / 10
BIAS = np.array([0.5, -0.5], np.float32)
BROKEN_LINE = MODEL_PY.splitlines().index('    return b.build({"y": x @ x})') + 1
X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "graphdl", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def ok(*args, cwd) -> str:
    r = cli(*args, cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The input files, made once (exporting takes a subprocess)."""
    d = tmp_path_factory.mktemp("cli")
    (d / "tiny.py").write_text(MODEL_PY)
    np.save(d / "x.npy", X)
    np.save(d / "x64.npy", X.astype(np.float64))
    (d / "junk.npy").write_bytes(b"not numpy at all")
    (d / "corrupt.onnx").write_bytes(b"\x08\x07\xff\xff\x00garbage")
    _unknown_op_model(d / "det.onnx")
    for name in ("model", "two_losses", "no_scalar"):
        ok("export", f"tiny.py:{name}", "-o", f"{name}.onnx", cwd=d)
    (d / "model.onnx").rename(d / "tiny.onnx")
    return d


@pytest.fixture
def work(base, tmp_path):
    """A fresh copy of the input files for one test."""
    for f in base.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    return tmp_path


@pytest.fixture
def tiny_onnx(work):
    return work / "tiny.onnx"


def _unknown_op_model(path):
    node = helper.make_node("Det", ["x"], ["y"], name="the_det")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", 1, [3, 3])],
                          [helper.make_tensor_value_info("y", 1, [])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def ort_run(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def reference(x):
    """The tiny model and its gradients, derived by hand."""
    y = np.tanh(x @ W + BIAS)
    loss = np.mean(y * y)
    da = 2 * y * (1 - y * y) / y.size
    return {"y": y, "loss": loss, "w_grad": x.T @ da, "bias_grad": da.sum(0),
            "x_grad": da @ W.T}


# -- inspect / export / run -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tiny.py", "tiny.py:model", "tiny.onnx"])
def test_inspect_prints_inputs_outputs_nodes_and_parameter_count(work, tiny_onnx, model):
    out = ok("inspect", model, cwd=work)
    assert "%x: f32[N,3]" in out
    assert "%y: f32[N,2]" in out and "%loss: f32[]" in out
    assert "= tanh(" in out and ":f32[N,2] = matmul(%x, %w)" in out
    assert "%w: f32[3,2]" in out
    assert "parameter count: 8" in out


def test_export_is_valid_onnx_that_ort_runs(work):
    out = ok("export", "tiny.py:model", "-o", "m17.onnx", "--opset", "17", cwd=work)
    assert "m17.onnx" in out
    model = onnx.load(work / "m17.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    got, want = ort_run(work / "m17.onnx", {"x": X}), reference(X)
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-5)
    np.testing.assert_allclose(got["loss"], want["loss"], rtol=1e-5)
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("backend", ["numpy", "ort"])
@pytest.mark.parametrize("model", ["tiny.py", "tiny.onnx"])
def test_run_writes_every_output_to_npz(work, tiny_onnx, model, backend):
    ok("run", model, "--feed", "x=x.npy", "--backend", backend, "-o", "out.npz", cwd=work)
    with np.load(work / "out.npz") as got:
        assert sorted(got.files) == ["loss", "y"]
        on_file = ort_run(tiny_onnx, {"x": X})
        for k in ("y", "loss"):
            np.testing.assert_allclose(got[k], on_file[k], rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(got[k], reference(X)[k], rtol=1e-5, atol=1e-7)


def test_run_any_output_name_and_provider_auto(work):
    """Output names that numpy.savez would take as its own arguments still round-trip."""
    ok("run", "tiny.py:odd_names", "--feed", "x=x.npy", "--provider", "auto", "-o", "o.npz",
       cwd=work)
    with np.load(work / "o.npz") as got:
        assert sorted(got.files) == ["a/b", "allow_pickle", "file"]
        np.testing.assert_allclose(got["file"], X * 2, rtol=1e-6)
        np.testing.assert_allclose(got["allow_pickle"], X.sum(), rtol=1e-5)
        np.testing.assert_array_equal(got["a/b"], X)


# -- grad -------------------------------------------------------------------------------------


def test_grad_default_wrt_every_float_initializer(work, tiny_onnx):
    ok("grad", "tiny.onnx", "-o", "g.onnx", "--dot", "g.dot", cwd=work)
    model = onnx.load(work / "g.onnx")
    assert [i.name for i in model.graph.input] == ["x"]
    assert {"w", "bias"} <= {t.name for t in model.graph.initializer}
    assert {n.domain for n in model.graph.node} <= {""}
    got, want = ort_run(work / "g.onnx", {"x": X}), reference(X)
    assert list(got) == ["y", "loss", "w_grad", "bias_grad"]
    for k in got:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-7, err_msg=k)
    check_dot((work / "g.dot").read_text(), work / "tiny.onnx")


def check_dot(dot: str, model_path) -> None:
    """Every edge joins declared nodes; gradient nodes are coloured apart and sit in one cluster
    per forward node, as in the gradient graph built in-process."""
    import graphdl as gd
    import passes

    g = gd.from_onnx(model_path)
    gg = passes.grad(g, "loss", list(g.params))
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    declared = set(re.findall(r"^\s*(\w+) \[", dot, re.M))
    for a, b in re.findall(r"^\s*(\w+) -> (\w+)", dot, re.M):
        assert a in declared and b in declared
    grad_nodes = [n for n in gg.nodes if n.grad_of is not None]
    assert dot.count("#fbd9b5") == len(grad_nodes) > 0
    assert dot.count("#dbe9f6") == len(gg.nodes) - len(grad_nodes)
    clusters = re.findall(r'label="grad of (\S+) \(\w+\)"', dot)  # NAME (op)
    assert sorted(clusters) == sorted({n.grad_of for n in grad_nodes})
    assert set(clusters) <= {n.name for n in g.nodes}
    assert 'label="x\\nf32[N,3]"' in dot


def test_grad_wrt_inputs_and_initializers_in_given_order(work, tiny_onnx):
    ok("grad", "tiny.onnx", "-o", "g.onnx", "--loss", "loss", "--wrt", "bias,x", cwd=work)
    got, want = ort_run(work / "g.onnx", {"x": X}), reference(X)
    assert list(got) == ["y", "loss", "bias_grad", "x_grad"]
    np.testing.assert_allclose(got["x_grad"], want["x_grad"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got["bias_grad"], want["bias_grad"], rtol=1e-5, atol=1e-7)


def test_grad_needs_loss_when_several_scalars(work):
    r = cli("grad", "two_losses.onnx", "-o", "g.onnx", cwd=work)
    assert r.returncode == 2 and "--loss" in r.stderr
    ok("grad", "two_losses.onnx", "-o", "g.onnx", "--loss", "l2", cwd=work)
    x = np.array([1.5, -2.0], np.float32)
    got = ort_run(work / "g.onnx", {"x": x})
    np.testing.assert_allclose(got["w_grad"], 2 * x, rtol=1e-6)  # d sum(x w^2)/dw at w = 1


# -- user errors: exit 2, one line, no traceback ----------------------------------------------


CUDA = "CUDAExecutionProvider" in ort.get_available_providers()

ERRORS = [
    (["inspect", "missing.onnx"], "missing.onnx"),
    (["inspect", "corrupt.onnx"], "corrupt.onnx"),
    (["inspect", "det.onnx"], "the_det"),
    (["inspect", "missing.py"], "missing.py"),
    (["inspect", "tiny.py:nothing"], "nothing"),
    (["inspect", "tiny.py:broken"], f"tiny.py:{BROKEN_LINE}"),
    (["inspect", "tiny.py:not_a_graph"], "not a graphdl Graph"),
    (["run", "tiny.onnx", "--feed", "x"], "--feed 'x'"),
    (["run", "tiny.onnx", "--feed", "x=nope.npy"], "nope.npy"),
    (["run", "tiny.onnx", "--feed", "x=junk.npy"], "junk.npy"),
    (["run", "tiny.onnx"], "missing feed"),
    (["run", "tiny.onnx", "--feed", "x=x64.npy"], "float64"),
    (["run", "tiny.onnx", "--feed", "x=x.npy", "--backend", "tpu"], "--backend"),
    (["export", "tiny.py", "-o", "e.onnx", "--opset", "3"], "opset 3"),
    (["export", "tiny.py", "-o", "no_such_dir/e.onnx"], "no_such_dir"),
    (["grad", "tiny.onnx", "-o", "g.onnx", "--wrt", "w,nope"], "--wrt 'nope'"),
    (["grad", "tiny.onnx", "-o", "g.onnx", "--loss", "nope"], "--loss 'nope'"),
    (["grad", "no_scalar.onnx", "-o", "g.onnx"], "scalar"),
    (["frobnicate"], "frobnicate"),
]
if not CUDA:
    ERRORS.append((["run", "tiny.onnx", "--feed", "x=x.npy", "--provider", "cuda"],
                   "CUDAExecutionProvider"))


@pytest.mark.parametrize("args,needle", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_user_errors_exit_2_with_one_line(work, tiny_onnx, args, needle):
    before = sorted(p.name for p in work.iterdir())
    r = cli(*args, cwd=work)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert sorted(p.name for p in work.iterdir()) == before  # nothing half-written left


def test_internal_errors_exit_1_with_a_traceback(monkeypatch, capsys):
    """A bug in graphdl is not the user's fault: status 1, and the traceback to report."""
    from graphdl.tools import cli

    def boom(args):
        raise KeyError("bug")

    monkeypatch.setattr(cli, "cmd_inspect", boom)
    assert cli.main(["inspect", "whatever.onnx"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error" in err
