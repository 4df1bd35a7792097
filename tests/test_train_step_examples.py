"""The training examples, run as a user runs them: the digits MLP trained entirely in stock
onnxruntime reaches the issue's accuracy, and every optimiser of the comparison learns."""
from __future__ import annotations

import os
import subprocess
import sys

import onnx
from onnx import numpy_helper


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


def test_finetune_imported_learns_the_new_digits(tmp_path):
    """A CNN pretrained on digits 0-4 (by graphdl here, so the test needs no PyTorch), its head
    re-drawn, fine-tuned on 5-9 through the command line in onnxruntime."""
    rows = _run("finetune_imported.py", "--pretrain", "graphdl", "--workdir", str(tmp_path))
    row = next(r for r in rows if "after_accuracy" in r)
    assert float(row["before_accuracy"]) < 0.5
    assert float(row["after_accuracy"]) >= 0.9
    counts = next(r for r in rows if "params_total" in r)
    assert 0 < int(counts["params_frozen"]) < int(counts["params_total"])
    arrays = [{t.name: numpy_helper.to_array(t).tobytes() for t in onnx.load(
        str(tmp_path / name)).graph.initializer} for name in ("pretrained.onnx",
                                                             "finetuned.onnx")]
    frozen = [n for n in arrays[0] if not n.startswith("fc")]
    assert frozen and all(arrays[0][n] == arrays[1][n] for n in frozen)
