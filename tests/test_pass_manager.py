"""The pass manager: per-pass trace, fixed point naming the passes that keep changing, every
exception re-raised naming its pass, and a default pipeline whose entries say why."""
import inspect

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.core.ir import Graph
from passes import DeadCodeElimination, Pass, PassManager, PassResult, Simplify
from passes import pipeline


def _graph() -> Graph:
    b = gd.GraphBuilder("g")
    x = b.input("x", ["N", 3])
    gd.exp(x)  # dead
    return b.build({"y": gd.tanh(x * 1.0 + 0.0)})


def test_trace_records_counts_changes_and_time():
    pm = PassManager([Simplify(), DeadCodeElimination()])
    out = pm.run(_graph()).graph
    simp, dce = pm.trace
    assert (simp.name, simp.before, simp.after, simp.changed) == ("Simplify", 6, 4, True)
    assert dict(simp.ops_removed) == {"add": 1, "mul": 1} and simp.ops_added == ()
    assert (dce.before, dce.after) == (4, 1) and dict(dce.ops_removed) == {"constant": 2, "exp": 1}
    assert all(t.seconds >= 0 for t in pm.trace)
    assert [n.op for n in out.nodes] == ["tanh"]
    text = pm.format_trace()
    assert "Simplify" in text and "-1xadd" in text and "nodes      6 -> 4" in text


class _Flip(Pass):
    """Swaps the graph's name between two values forever: never converges."""

    def run(self, g: Graph) -> PassResult:
        name = "a" if g.name != "a" else "b"
        return PassResult(Graph(g.inputs, g.nodes, g.outputs, g.initializers, name), True)


def test_fixed_point_names_the_passes_still_changing():
    pm = PassManager([DeadCodeElimination(), _Flip()], fixed_point=True, max_iterations=3)
    with pytest.raises(gd.PassError, match=r"no fixed point after 3 rounds; still changing: "
                                           r"_Flip$"):
        pm.run(_graph())
    assert [t.round for t in pm.trace] == [0, 0, 1, 1, 2, 2]


class _Crash(Pass):
    def run(self, g: Graph) -> PassResult:
        return PassResult(g, {}["missing"])


def test_any_exception_is_reraised_naming_the_pass():
    pm = PassManager([Simplify(), _Crash()])
    with pytest.raises(gd.PassError, match=r"pass _Crash failed: KeyError: 'missing'") as e:
        pm.run(_graph())
    assert isinstance(e.value.__cause__, KeyError)


def test_default_pipeline_entries_each_have_a_comment():
    src = inspect.getsource(pipeline.default_pipeline).splitlines()
    entries = [i for i, line in enumerate(src) if line.strip().endswith("(),")]
    assert len(entries) == len(pipeline.default_pipeline()) >= 7
    for i in entries:
        assert src[i - 1].strip().startswith("#"), f"no comment above {src[i].strip()}"


def test_optimize_keeps_outputs_and_values():
    g = _graph()
    trace: list = []
    out = passes.optimize(g, trace)
    assert [v.name for v in out.outputs] == ["y"]
    assert len(trace) == len(pipeline.default_pipeline())
    xv = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(gd.run(out, {"x": xv})["y"], np.tanh(xv), rtol=1e-6)


def test_cli_inspect_passes_prints_the_trace(tmp_path, capsys):
    from graphdl.tools import cli

    src = tmp_path / "m.py"
    src.write_text("import graphdl as gd\n"
                   "def model():\n"
                   "    b = gd.GraphBuilder('m')\n"
                   "    x, w = b.input('x', ['N', 3]), b.input('w', [3, 2])\n"
                   "    return b.build({'y': gd.relu(x @ w + 1.0) * 1.0})\n")
    assert cli.main(["inspect", str(src), "--passes"]) == 0
    out = capsys.readouterr().out
    assert "graph m: 5 nodes -> 3 after the default pipeline" in out
    assert "-1xadd -1xmatmul +1xgemm" in out
    assert "ElementwiseFusion" in out and "gemm(%x, %w, %constant_2" in out
