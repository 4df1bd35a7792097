"""examples/transformer_digits.py: the ViT learns in both engines, and the engines agree on the
loss of the first steps (same weights, same batches). The full run (>= 0.95 test accuracy in
each engine) takes about a minute; here a few epochs show the learning."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn")

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "transformer_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("transformer_digits", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_vit_learns_digits_in_both_engines():
    ex = _example()
    runs = {e: ex.train(e, epochs=3, verbose=False) for e in ("numpy", "ort")}
    for engine, r in runs.items():
        assert r["test_accuracy"] >= 0.6, engine  # chance is 0.1
        assert r["history"][-1]["loss"] < 0.5 * r["history"][0]["loss"], engine
    a, b = runs["numpy"]["losses"], runs["ort"]["losses"]
    assert abs(a[0] - b[0]) <= 1e-5 and abs(a[1] - b[1]) <= 1e-5


def test_model_exports_fused_transformer_ops():
    import graphdl as gd

    model = gd.to_onnx(_example().model(), target="onnxruntime==1.32")  # the fused ops' opsets
    types = {n.op_type for n in model.graph.node}
    assert {"Attention", "LayerNormalization", "Gelu"} <= types
