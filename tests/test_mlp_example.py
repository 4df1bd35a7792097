"""examples/mlp_digits.py: the MLP reaches >= 95% test accuracy on digits in both engines, and
the engines agree on the loss of the first steps (same weights, same batches)."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

pytest.importorskip("sklearn")

PATH = pathlib.Path(__file__).resolve().parents[1] / "examples" / "mlp_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("mlp_digits", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mlp_digits_trains_in_both_engines():
    ex = _example()
    runs = {e: ex.train(e, epochs=20, verbose=False) for e in ("numpy", "ort")}
    for engine, r in runs.items():
        assert r["test_accuracy"] >= 0.95, engine
        assert r["losses"][-1] < 0.1 * r["losses"][0], engine
    a, b = runs["numpy"]["losses"], runs["ort"]["losses"]
    assert abs(a[0] - b[0]) <= 1e-5 and abs(a[1] - b[1]) <= 1e-5
    assert runs["numpy"]["first_step_loss"] == pytest.approx(2.3, abs=0.3)  # ~ log(10)


def test_model_is_the_inference_graph():
    g = _example().model()
    assert [v.name for v in g.inputs] == ["x"] and [v.name for v in g.outputs] == ["logits"]
    assert len(g.initializers) == 6
