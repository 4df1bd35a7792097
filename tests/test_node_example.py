"""examples/node/train_digits.mjs trains the digits MLP and CNN in onnxruntime-node (npm) from the
files graphdl saves, with the same per-step losses (1e-5) as the pinned Python onnxruntime on
the same batches. Skips visibly where node or npm is missing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_DIR = os.path.join(ROOT, "examples", "node")
EPOCHS = 2

pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")),
                                reason="node and npm are not installed: the Node.js example "
                                       "is not checked")


def installed() -> None:
    """onnxruntime-node in examples/node/node_modules (examples/node/install.sh, as CI does)."""
    if os.path.isdir(os.path.join(NODE_DIR, "node_modules", "onnxruntime-node")):
        return
    r = subprocess.run(["bash", os.path.join(NODE_DIR, "install.sh")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"examples/node/install.sh failed: {r.stderr[-2000:]}"


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_node_training_matches_python_onnxruntime(model, tmp_path):
    installed()
    sys.path.insert(0, NODE_DIR)
    try:
        import prepare_digits
    finally:
        sys.path.remove(NODE_DIR)
    from tests.ort_runtime_check import train

    folder = str(tmp_path / "train")
    (prepare_digits.export_cnn if model == "cnn" else prepare_digits.export)(folder)
    prepare_digits.write_data(folder, EPOCHS, model)
    losses_path = str(tmp_path / "losses.json")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "train_digits.mjs"), folder,
                        "--losses", losses_path], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Expected shape" not in r.stderr, r.stderr[-2000:]  # fed shapes are the model's
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("engine=onnxruntime-node test_accuracy="), last
    node_losses = json.load(open(losses_path))
    py_losses, accuracy = train(folder)
    assert len(node_losses) == len(py_losses) == EPOCHS * -(-1437 // 32)
    np.testing.assert_allclose(node_losses, py_losses, rtol=0, atol=1e-5)
    assert py_losses[-1] < py_losses[0] / 3  # it trains: the loss falls
    assert f"test_accuracy={accuracy:.4f}" in last


def test_every_example_runs_alike_in_node_and_python(tmp_path):
    """The conformance matrix: every example's inference graph and training step at the
    portable default opset is checker-clean (full_check) and gives the interpreter's outputs
    in onnxruntime-node and in the pinned Python onnxruntime."""
    import onnx

    import graphdl as gd
    from graphdl.training.step import raw_arrays, read_raw_arrays
    from tests.test_onnx_opsets import feeds_for, ort_outputs
    from tests.test_second_runtime import graphs

    installed()
    want, python = {}, {}
    for name, g in graphs().items():
        model, feeds = gd.to_onnx(g), feeds_for(g)
        assert (model.opset_import[0].version, model.ir_version) == (17, 8), name
        onnx.checker.check_model(model, full_check=True)
        (tmp_path / f"{name}.onnx").write_bytes(model.SerializeToString())
        raw, entries = raw_arrays(feeds)
        (tmp_path / f"{name}.feeds.bin").write_bytes(raw)
        (tmp_path / f"{name}.feeds.json").write_text(json.dumps(
            {"file": f"{name}.feeds.bin", "tensors": entries}))
        want[name], python[name] = gd.run(g, feeds), ort_outputs(model, feeds)
    r = subprocess.run(["node", os.path.join(NODE_DIR, "run_models.mjs"), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for name, outputs in want.items():
        meta = json.loads((tmp_path / f"{name}.out.json").read_text())
        node = read_raw_arrays(str(tmp_path / meta["file"]), meta["tensors"])
        assert set(node) == set(outputs), name
        for out, value in outputs.items():
            for engine, got in (("node", node[out]), ("python", python[name][out])):
                np.testing.assert_allclose(got, value, rtol=1e-4, atol=1e-5,
                                           err_msg=f"{engine} {name} {out}")
