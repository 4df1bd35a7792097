"""The training examples, run as a user runs them: the digits MLP trained entirely in stock
onnxruntime reaches the issue's accuracy, and every optimiser of the comparison learns."""
from __future__ import annotations

import os
import subprocess
import sys

import onnx


def _run(script: str, *args: str) -> list[dict[str, str]]:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = subprocess.run([sys.executable, os.path.join("examples", script), *args],
                         capture_output=True, text=True, env=env, timeout=300, check=True).stdout
    rows = [line for line in out.splitlines() if "=" in line and not line.startswith("[")]
    return [dict(kv.split("=", 1) for kv in line.split()) for line in rows]


def test_train_in_onnxruntime_reaches_96_percent(tmp_path):
    (row,) = _run("train_in_onnxruntime.py", "--out", str(tmp_path))
    assert row["engine"] == "ort"
    assert float(row["test_accuracy"]) >= 0.96
    model = onnx.load(str(tmp_path / "train_step.onnx"))
    assert {n.domain for n in model.graph.node} == {""}
    assert (tmp_path / "train_step.json").exists() and (tmp_path / "infer.onnx").exists()


def test_every_optimiser_learns_digits():
    rows = _run("compare_optimizers.py")
    assert [r["optimizer"] for r in rows] == ["gradient_descent", "minibatch_sgd", "momentum",
                                              "adagrad", "adadelta", "adam"]
    for r in rows:
        assert float(r["test_accuracy"]) > 0.9, r
