"""The benchmark harness (benchmarks/harness.py, ``python -m benchmarks``): its interleaved timer
and same-round ratios on contenders of known relative cost, the output check that keeps a
wrong-but-fast contender from being timed, and the table / JSON a quick run prints. No timing
targets are asserted here: those are what the harness reports."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.harness import OutputsDiffer, Row, interleaved, markdown, median_ratio, \
    same_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _work(n: int) -> int:
    """Pure-Python work proportional to ``n`` (no allocation, no BLAS threads)."""
    total = 0
    for i in range(n):
        total += i & 7
    return total


def test_median_ratio_tracks_known_work():
    fns = {"single": lambda: _work(20_000), "double": lambda: _work(40_000)}
    times = interleaved(fns, rounds=7, chunk_s=0.01)
    assert [len(v) for v in times.values()] == [7, 7]
    assert 1.5 < median_ratio(times, "double", "single") < 2.7
    assert 0.37 < median_ratio(times, "single", "double") < 0.67


def test_median_ratio_is_the_median_of_same_round_ratios():
    times = {"a": [2.0, 9.0, 3.0], "b": [1.0, 3.0, 1.0]}  # per-round ratios 2, 3, 3
    assert median_ratio(times, "a", "b") == 3.0


def test_same_outputs_rejects_a_wrong_contender():
    want = {"loss": np.float32(2.5), "W.new": np.arange(6, dtype=np.float32).reshape(2, 3)}
    same_outputs("exact", {k: np.copy(v) for k, v in want.items()}, want)
    wrong = {"loss": want["loss"], "W.new": want["W.new"] * 1.01}
    with pytest.raises(OutputsDiffer, match="W.new differs"):
        same_outputs("wrong", wrong, want)
    with pytest.raises(OutputsDiffer, match="shape"):
        same_outputs("shape", {**want, "W.new": want["W.new"].T}, want)
    with pytest.raises(OutputsDiffer):
        same_outputs("nan", {**want, "loss": np.float32(np.nan)}, want)


def test_rows_judge_targets_and_render_as_markdown():
    rows = [Row("s", "a / b", 1.05, ("<=", 1.1)), Row("s", "c / d", 1.9, (">=", 2.0)),
            Row("s", "removed", 0.53, (">=", 0.3), "%", "55 -> 26"),
            Row("s", "e / torch", None, note="torch not installed")]
    assert [r.met for r in rows] == [True, False, True, None]
    assert markdown(rows).splitlines() == [
        "| metric | measured | target | met |", "|---|---|---|---|",
        "| a / b | 1.05x | <= 1.10x | yes |", "| c / d | 1.90x | >= 2.00x | no |",
        "| removed | 53% (55 -> 26) | >= 30% | yes |",
        "| e / torch | torch not installed | - | - |"]


def _harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", "--quick", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_quick_run_json_rows_and_node_counts():
    import passes
    from benchmarks.mlp_step import mlp_train_step

    proc = _harness("--only", "nodes,mlp", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["meta"]["command"] == "python -m benchmarks --quick --only nodes,mlp --json"
    rows = {r["metric"]: r for r in out["rows"]}
    g = mlp_train_step()
    step = rows["MLP training step: nodes removed by the pipeline"]
    assert step["note"] == f"{len(g.nodes)} -> {len(passes.optimize(g).nodes)}"
    assert out["details"]["nodes"]["step"]["before"] == len(g.nodes)
    has_torch = importlib.util.find_spec("torch") is not None
    for plan in ("unoptimised", "optimised"):
        vs_numpy = rows[f"MLP step: graphdl {plan} / NumPy"]
        assert vs_numpy["measured"] > 0
        op, bound = vs_numpy["target"]
        assert vs_numpy["met"] == (vs_numpy["measured"] <= bound) and op == "<="
        vs_torch = rows[f"MLP step: graphdl {plan} / torch eager"]
        assert (vs_torch["measured"] is not None) == has_torch
    contenders = {"numpy", "graphdl_unoptimised", "graphdl_optimised"} | (
        {"torch"} if has_torch else set())
    assert set(out["details"]["mlp"]["median_us"]) == contenders


def test_quick_run_prints_a_markdown_table(monkeypatch, capsys):
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(var, "1")  # restored afterwards: run.py sets them on import
    from benchmarks.run import main

    assert main(["--quick", "--only", "nodes"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert table[0] == "| metric | measured | target | met |"
    assert len(table) == 4  # header, rule, the step's and the gradient graph's node counts
    assert table[2].startswith("| MLP training step: nodes removed by the pipeline | ")
