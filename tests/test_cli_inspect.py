"""`graphdl inspect` (table, --json), `viz` and `explain` from the shell, and the user mistakes
that tests/test_cli.py does not already cover: each exits 2 with one line on stderr."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_cli import MODEL_PY, X, cli, ok


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_inspect")
    (d / "tiny.py").write_text(MODEL_PY)
    np.save(d / "x.npy", X)
    np.save(d / "x_rank1.npy", X[0])
    np.save(d / "x_wide.npy", np.zeros((5, 4), np.float32))
    (d / "notes.txt").write_text("not a model")
    ok("export", "tiny.py:model", "-o", "tiny.onnx", cwd=d)
    return d


def test_inspect_json_is_the_summary(base):
    d = json.loads(ok("inspect", "tiny.onnx", "--json", cwd=base))
    assert d["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 3]}]
    assert [o["name"] for o in d["outputs"]] == ["y", "loss"]
    mm = next(n for n in d["nodes"] if n["op"] == "matmul")
    assert mm["params"] == 6 and mm["flops"] == f"N*{2 * 3 * 2}"
    assert mm["outputs"][0]["shape"] == ["N", 2]
    assert d["totals"]["params"] == 8 and d["totals"]["nodes"] == len(d["nodes"])


def test_inspect_prints_the_table_and_totals(base):
    out = ok("inspect", "tiny.py", cwd=base)
    table = out.split("parameter count: 8")[1]
    assert "node" in table and "flops" in table
    # matmul [N,3]@[3,2]: 2*3*2 per row; add, tanh, mul: 2 per row; reduce_mean reads 2 per row
    assert "total: 5 nodes, 8 parameters, N*20 FLOPs" in table


def test_viz_dot_and_explain(base, tmp_path):
    out = ok("viz", str(base / "tiny.py"), "--grad", "--wrt", "w", "-o", "g.dot", cwd=tmp_path)
    dot = (tmp_path / "g.dot").read_text()
    assert "dot text" in out and 'label="w_grad\\nf32[3,2]"' in dot
    assert "grad of" in dot and "bias_grad" not in dot  # --wrt w only
    text = ok("explain", str(base / "tiny.py"), "--wrt", "w", "--loss", "loss", cwd=tmp_path)
    assert "delta(%w: f32[3,2]) = sum of 1 out-edge term" in text


ERRORS = [
    (["run", "tiny.onnx", "--feed", "x=x.npy", "--feed", "z=x.npy"], "unknown feed(s) ['z']"),
    (["run", "tiny.onnx", "--feed", "x=x_rank1.npy"], "feed 'x': expected shape [N,3]"),
    (["run", "tiny.onnx", "--feed", "x=x_wide.npy"], "(axis 1)"),
    (["inspect", "notes.txt"], "notes.txt"),
    (["inspect", "tiny.onnx", "--json", "--bogus"], "--bogus"),
    (["viz", "tiny.onnx", "-o", "g.jpg"], "g.jpg"),
    (["viz", "tiny.onnx", "-o", "g.png", "--wrt", "w"], "--grad"),
    (["viz", "tiny.onnx", "-o", "g.png", "--grad", "--wrt", "nope"], "--wrt 'nope'"),
    (["viz", "missing.onnx", "-o", "g.png"], "missing.onnx"),
    (["viz", "tiny.onnx", "-o", "no_dir/g.png"], "no_dir"),
    (["explain", "tiny.onnx", "--wrt", "nope"], "--wrt 'nope'"),
    (["explain", "tiny.onnx", "--wrt", "w", "--loss", "y"], "must be a scalar"),
    (["explain", "tiny.onnx"], "--wrt"),
]


@pytest.mark.parametrize("args,needle", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_user_errors_exit_2_with_one_line(base, args, needle):
    before = sorted(p.name for p in base.iterdir())
    r = cli(*args, cwd=base)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr
    assert sorted(p.name for p in base.iterdir()) == before


def _with_unsupported_ops(path) -> None:
    """Gemm -> Atan -> Add -> Acos: two ops graphdl does not import, among ones it does."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((3, 4), np.float32), "w")
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], name="dense", transB=0),
             helper.make_node("Atan", ["h"], ["e"], name="atan"),
             helper.make_node("Add", ["e", "h"], ["s"]),
             helper.make_node("Acos", ["s"], ["y"])]
    graph = helper.make_graph(nodes, "odd", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["N", 3])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_inspect_lists_a_model_with_unsupported_ops_then_names_them(tmp_path):
    """The import fails on the first unsupported node, but inspect still prints the whole
    model (types from ONNX's shape inference), marks both unsupported nodes, and ends with one
    error line and exit status 2."""
    _with_unsupported_ops(tmp_path / "odd.onnx")
    r = cli("inspect", "odd.onnx", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (err,) = r.stderr.strip().splitlines()
    assert "'atan' (op Atan) is not supported at opset 17 (and 1 more" in err
    lines = r.stdout.splitlines()
    nodes = [line.strip() for line in lines if line.startswith("  #")]
    assert nodes == [
        "#0 Gemm(x, w) -> h: float32[N,4]  {transB=0}",
        "#1 Atan(h) -> e: float32[N,4]   <- not supported by graphdl",
        "#2 Add(e, h) -> s: float32[N,4]",
        "#3 Acos(s) -> y: float32[N,4]   <- not supported by graphdl"]
    assert "  %x: float32[N,3]" in lines and "  %w: float32[3,4]" in lines
    assert "parameter count: 12" in lines
    listing = json.loads(cli("inspect", "odd.onnx", "--json", cwd=tmp_path).stdout)
    assert listing["unsupported_ops"] == ["Acos", "Atan"]
    assert [n["supported"] for n in listing["nodes"]] == [True, False, True, False]
    assert listing["parameters"] == [{"name": "w", "dtype": "float32", "shape": [3, 4]}]
