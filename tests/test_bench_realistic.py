"""The realistic-steps benchmark (benchmarks/bench_realistic.py) as a smoke run: its quick
section times every contender of every model entry after checking their losses agree, and
the loss check rejects a contender whose update is wrong. No timing targets are asserted."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.test_benchmarks_harness import ROOT

pytest.importorskip("torch")


def test_quick_section_reports_both_engines_for_every_model():
    from benchmarks.bench_realistic import cases

    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "realistic",
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["rows"]
    models = list(cases())
    assert {"resnet", "mlp"} <= set(models)
    assert (importlib.util.find_spec("benchmarks.realistic_lstm") is not None) == \
        ("lstm" in models)
    assert len(rows) == 3 * len(models)  # ort, interpreter and the products' floor
    for r in rows:
        assert r["measured"] > 0 and r["note"].startswith("min "), r
    medians = json.loads(proc.stdout)["details"]["realistic"]["median_ms"]
    assert set(medians) == {f"{m}@1" for m in models}
    assert all(set(v) == {"ort", "interpreter", "floor", "torch"} for v in medians.values())


def test_loss_check_rejects_a_wrong_update():
    from benchmarks.bench_realistic import _mlp_case, check_losses
    from benchmarks.harness import OutputsDiffer

    fns = _mlp_case(1, quick=True)
    check_losses("mlp", fns)
    right = _mlp_case(1, quick=True)
    first = right["ort"]()
    right["ort"] = lambda: first  # every step the first step's loss: no update happens
    with pytest.raises(OutputsDiffer, match="ort losses"):
        check_losses("mlp", right)
