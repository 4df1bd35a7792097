"""The ONNX backend node test cases for Conv, MaxPool, AveragePool, GlobalAveragePool and Flatten
(plus GlobalMaxPool and ConvTranspose) that ship in the ``onnx`` wheel
(``onnx.backend.test.case.node``: each a one-node model, its inputs and the outputs of onnx's
own reference), imported with graphdl.from_onnx and run in graphdl's interpreter.

No case is skipped (SKIPPED lists none, with the reason where one is added); a case added to a
later onnx wheel that graphdl cannot import shows up as a failure, not silently.
"""
from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest

import graphdl as gd

OPS = ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "GlobalMaxPool",
       "ConvTranspose")
MODULES = ("conv", "maxpool", "averagepool", "globalaveragepool", "flatten", "globalmaxpool",
           "convtranspose")
#: case name -> why it is skipped (none at present)
SKIPPED: dict[str, str] = {}


def _cases() -> list:
    """The cases of these ops. ``collect_testcases`` fills one global list on its first call
    only, so the case modules are imported here directly (their export functions run at import
    and append to that list)."""
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in MODULES:
            importlib.import_module(f"onnx.backend.test.case.node.{module}")
    return [c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type in OPS]


CASES = _cases()


def test_cases_were_found():
    found = {c.model.graph.node[0].op_type for c in CASES}
    assert found == set(OPS)
    assert len(CASES) >= 60
    assert set(SKIPPED) <= {c.name for c in CASES}, "a skip names a case that no longer exists"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backend_case(case):
    if case.name in SKIPPED:
        pytest.skip(SKIPPED[case.name])
    inputs, outputs = case.data_sets[0]
    feeds = dict(zip([i.name for i in case.model.graph.input], inputs))
    got = gd.run(gd.from_onnx(case.model), feeds)
    for out, want in zip(case.model.graph.output, outputs):
        assert got[out.name].dtype == want.dtype, f"{case.name}: {out.name}"
        np.testing.assert_allclose(got[out.name], want, rtol=case.rtol,
                                   atol=max(case.atol, 1e-6), err_msg=f"{case.name}: {out.name}")
