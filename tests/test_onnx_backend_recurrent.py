"""The ONNX backend node test cases for RNN, LSTM and GRU that ship in the ``onnx`` wheel
(``onnx.backend.test.case.node``: each a one-node model, its inputs and the outputs of onnx's
own NumPy reference), imported with graphdl.from_onnx and run in graphdl's interpreter.

Cases run as shipped: ``sequence_lens``, which graphdl must know when it unrolls, is fed at run
time and the engine specialises the graph on it (graphdl/onnx/specialisation.py). No case is
skipped: SKIPPED lists none; a case added to a later onnx wheel that graphdl cannot import shows
up as a failure, not silently.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphdl as gd

OPS = ("RNN", "LSTM", "GRU")
#: case name -> why it is skipped (none at present)
SKIPPED: dict[str, str] = {}


def _cases() -> list:
    """The cases of the three ops. ``collect_testcases`` fills one global list on its first
    call only, so the case modules are imported here directly (their export functions run at
    import and append to that list)."""
    import importlib

    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in ("rnn", "lstm", "gru"):
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
    return [c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type in OPS]


CASES = _cases()


def test_cases_were_found():
    names = {c.name for c in CASES}
    for op in ("gru", "lstm", "rnn"):
        assert any(op in n for n in names), f"no backend case for {op}"
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backend_case(case):
    if case.name in SKIPPED:
        pytest.skip(SKIPPED[case.name])
    inputs, outputs = case.data_sets[0]
    graph_inputs = [i.name for i in case.model.graph.input]
    feeds = dict(zip(graph_inputs, inputs))
    got = gd.run(gd.from_onnx(case.model), feeds)
    for out, want in zip(case.model.graph.output, outputs):
        np.testing.assert_allclose(got[out.name], want, rtol=case.rtol, atol=max(case.atol, 1e-6),
                                   err_msg=f"{case.name}: {out.name}")
