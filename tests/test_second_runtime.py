"""Every example's exported files in a second onnxruntime (1.31: the newest onnxruntime-gpu's
version; its CPU wheel stands in for the GPU build), in its own environment, equal the
interpreter, and its digits MLP and CNN training runs give the pinned onnxruntime's per-step
losses (1e-5).

Set GRAPHDL_ORT_PYTHON to that environment's python, made with
``python -m venv /tmp/ort131 && /tmp/ort131/bin/pip install onnxruntime==1.31.* numpy``;
without it the test skips visibly."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import optim
from tests.test_onnx_opsets import EXAMPLES, example, feeds_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.environ.get("GRAPHDL_ORT_PYTHON")
EPOCHS = 1

pytestmark = pytest.mark.skipif(not PYTHON, reason="GRAPHDL_ORT_PYTHON (a python with "
                                "onnxruntime 1.31) is not set: the second runtime is not checked")


def other_version() -> str:
    r = subprocess.run([PYTHON, "-c", "import onnxruntime; print(onnxruntime.__version__)"],
                       capture_output=True, text=True, check=True)
    return r.stdout.strip()


def graphs() -> dict[str, gd.Graph]:
    """Every example's inference graph and the Adam training step of its loss model."""
    out = {}
    for name in EXAMPLES:
        mod = example(name)
        out[f"{name}.infer"] = mod.model()
        out[f"{name}.step"] = passes.training_step(mod.loss_model(), optim.Adam(lr=0.01)).graph
    return out


def test_example_files_run_alike_in_the_second_runtime(tmp_path):
    version = other_version()
    major, minor = version.split(".")[:2]
    target = f"onnxruntime=={major}.{minor}"
    sys.path.insert(0, os.path.join(ROOT, "examples", "node"))
    try:
        import prepare_digits
    finally:
        sys.path.pop(0)
    from tests.ort_runtime_check import train

    want = {}
    for name, g in graphs().items():
        feeds = feeds_for(g)
        for kind, model in (("portable", gd.to_onnx(g)), ("target", gd.to_onnx(g, target=target))):
            path = str(tmp_path / f"{name}.{kind}")
            with open(path + ".onnx", "wb") as f:
                f.write(model.SerializeToString())
            np.savez(path + ".feeds.npz", **feeds)
            want[f"{name}.{kind}.onnx"] = gd.run(g, feeds)
    for model in ("mlp", "cnn"):
        folder = str(tmp_path / f"train_{model}")
        (prepare_digits.export_cnn if model == "cnn" else prepare_digits.export)(folder)
        prepare_digits.write_data(folder, EPOCHS, model)
    out = tmp_path / "result.json"
    r = subprocess.run([PYTHON, os.path.join(ROOT, "tests", "ort_runtime_check.py"),
                        str(tmp_path), str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["onnxruntime"] == version and set(got["models"]) == set(want)
    for file, outputs in want.items():
        for name, value in outputs.items():
            np.testing.assert_allclose(np.asarray(got["models"][file][name]), value,
                                       rtol=1e-4, atol=1e-5, err_msg=f"{file} {name}")
    assert set(got["runs"]) == {"train_mlp", "train_cnn"}
    for name, run in got["runs"].items():
        losses, accuracy = train(str(tmp_path / name))
        np.testing.assert_allclose(run["losses"], losses, rtol=0, atol=1e-5, err_msg=name)
        assert abs(run["accuracy"] - accuracy) < 1e-9, name
