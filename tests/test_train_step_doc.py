"""docs/training-step-format.md lists the training step's inputs in order; every case of
tests/test_train_step.py (dropout masks, batch norm, optimisers with and without a step
count) is checked against that list, by the kind the manifest gives each input."""
from __future__ import annotations

import re
from pathlib import Path

import passes
import pytest

from tests.test_train_step import CASES

DOC = Path(__file__).resolve().parent.parent / "docs" / "training-step-format.md"
#: how a list item of the doc begins -> the kinds of input it covers
PHRASES = {"the batch": {"batch"}, "the trained parameters": {"param", "running_stat"},
           "the carried state": {"param", "running_stat", "optimizer"},
           "the hyperparameters": {"hyperparam"}, "the optimiser state": {"optimizer"}}


def documented_order() -> list[set[str]]:
    text = DOC.read_text()
    section = text.split("Inputs, in order:", 1)[1].split("Outputs:", 1)[0]
    items = re.findall(r"^\d+\. (.*)$", section, re.M)
    assert items, "the doc lists no inputs"
    return [next(k for p, k in PHRASES.items() if item.startswith(p)) for item in items]


def kinds(step) -> list[str]:
    m = step.manifest
    state = {e["input"]: e["kind"] for e in m["state"]}
    return [state.get(v.name) or ("hyperparam" if v.name in m["hyperparams"] else "batch")
            for v in step.graph.inputs]


@pytest.mark.parametrize("name", sorted(CASES))
def test_inputs_come_in_the_documented_order(name):
    step = passes.training_step(*CASES[name]())
    order = documented_order()
    position = 0
    for input_name, kind in zip([v.name for v in step.graph.inputs], kinds(step)):
        while position < len(order) and kind not in order[position]:
            position += 1
        assert position < len(order), f"{name}: input {input_name!r} ({kind}) is out of the " \
                                      f"documented order {order}"
    exported = [i.name for i in step.to_onnx().graph.input]
    assert exported == [v.name for v in step.graph.inputs]  # the ONNX file keeps the order
