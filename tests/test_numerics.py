"""The opt-in numerics check names the first node producing NaN or Inf, in both engines; the
expected node is derived by hand from the inputs (log of a negative number is the first NaN,
exp of 1000 the first Inf in float32)."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
from graphdl.engine.numerics import NumericsError, check_numerics, find_nonfinite

ENGINES = ["numpy", "ort"]


def _graph() -> gd.Graph:
    b = gd.GraphBuilder("nan")
    x = b.input("x", ["N", 3])
    h = gd.tanh(x)                      # finite for any finite x
    lg = gd.log(x)                      # NaN where x < 0: the first bad node
    y = gd.exp(lg * 2.0) + h            # NaN propagates: must not be blamed
    return b.build({"y": y})


@pytest.mark.parametrize("engine", ENGINES)
def test_first_nan_is_named(engine):
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], np.float32)
    found = find_nonfinite(_graph(), {"x": x}, backend=engine)
    assert found is not None
    assert found.op in ("log", "Log") and (found.nan, found.inf) == (1, 0)
    with pytest.raises(NumericsError, match="produced 1 NaN"):
        check_numerics(_graph(), {"x": x}, backend=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_first_inf_is_named_with_its_value(engine):
    b = gd.GraphBuilder("inf")
    x = b.input("x", [2])
    e = gd.exp(x)
    g = b.build({"y": e * 0.0})  # inf * 0 = NaN downstream; exp is the first bad node
    found = find_nonfinite(g, {"x": np.array([1.0, 1000.0], np.float32)}, backend=engine)
    assert (found.op.lower(), found.nan, found.inf) == ("exp", 0, 1)
    assert found.output == e.name  # the export keeps graphdl's value names


@pytest.mark.parametrize("engine", ENGINES)
def test_finite_run_reports_nothing(engine):
    x = np.abs(np.random.default_rng(0).standard_normal((4, 3))).astype(np.float32) + 0.1
    assert find_nonfinite(_graph(), {"x": x}, backend=engine) is None
    check_numerics(_graph(), {"x": x}, backend=engine)


def test_non_finite_feed_is_named():
    x = np.array([[1.0, np.inf, 3.0]], np.float32)
    found = find_nonfinite(_graph(), {"x": x})
    assert (found.node, found.inf) == ("feed 'x'", 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_check_numerics_names_the_node_and_exits_2(engine, tmp_path):
    import subprocess
    import sys

    path = tmp_path / "nan.onnx"
    path.write_bytes(gd.to_onnx(_graph()).SerializeToString())
    np.save(tmp_path / "x.npy", np.array([[1.0, -2.0, 3.0]], np.float32))
    cmd = [sys.executable, "-m", "graphdl", "run", str(path), "--feed",
           f"x={tmp_path / 'x.npy'}", "--backend", engine]
    bad = subprocess.run(cmd + ["--check-numerics"], capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and "NaN" in bad.stderr
    assert "log" in bad.stderr.lower()
    plain = subprocess.run(cmd, capture_output=True, text=True)  # without the flag: runs
    assert plain.returncode == 0 and "nan" in plain.stdout.lower()
