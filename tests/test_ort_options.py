"""onnxruntime session settings (graphdl/engine/ort_options.py) reach the session: the thread count
and spinning read back from the session, the profiler writes its trace, a caller's own
SessionOptions is used as given, and the settings do not change what a step computes."""
from __future__ import annotations

import glob
import json

import numpy as np
import onnxruntime as ort
import pytest

import graphdl as gd
import passes
from graphdl import GraphError, optim
from graphdl.nn import MLP
from graphdl.engine.ort_options import OrtOptions, session_options
from graphdl.training.step_runner import OrtRunner
from graphdl.training.trainer import Trainer

SPIN = "session.intra_op.allow_spinning"
STOP = "session.force_spinning_stop"


def _step():
    b = gd.GraphBuilder("mlp")
    x, y = b.input("x", ["N", 8]), b.input("y", ["N"], "int64")
    fwd = b.build({"loss": gd.softmax_cross_entropy(MLP((8, 16, 3), "relu", seed=0)(x), y)})
    return passes.training_step(fwd, optim.Adam(lr=0.01))


def _data(n: int = 48):
    rng = np.random.default_rng(0)
    return {"x": rng.standard_normal((n, 8)).astype(np.float32), "y": rng.integers(0, 3, n)}


def test_threads_and_spinning_read_back_from_the_session():
    step = _step()
    for opts, threads, spin in ((OrtOptions(threads=2), 2, "1"), (OrtOptions(threads=1), 1, "1"),
                                (OrtOptions(threads=2, spinning=False), 2, "0")):
        got = OrtRunner(step, options=opts).sess.get_session_options()
        assert got.intra_op_num_threads == threads
        assert got.get_session_config_entry(SPIN) == spin
        assert got.get_session_config_entry(STOP) == "1"  # never spinning between runs
    default = OrtRunner(step).sess.get_session_options()
    assert default.get_session_config_entry(SPIN) == "1"
    assert default.get_session_config_entry(STOP) == "1"  # onnxruntime's own default is "0"
    assert OrtRunner(step, threads=3).sess.get_session_options().intra_op_num_threads == 3
    with pytest.raises(GraphError, match="spinning must be True or False"):
        OrtOptions(spinning=None)


def test_profiling_writes_the_trace(tmp_path):
    step = _step()
    runner = OrtRunner(step, options=OrtOptions(threads=1, profile=str(tmp_path / "trace")))
    runner(_data(8), step.hyperparam_feeds())
    path = runner.sess.end_profiling()
    assert glob.glob(str(tmp_path / "trace*.json")) == [path]
    with open(path) as f:
        ops = {e["args"]["op_name"] for e in json.load(f) if e.get("cat") == "Node"}
    assert {"Gemm", "SoftmaxCrossEntropyLoss"} & ops


def test_a_callers_session_options_are_used_as_given():
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.add_session_config_entry("session.use_env_allocators", "0")
    got = OrtRunner(_step(), options=so).sess.get_session_options()
    assert got.intra_op_num_threads == 1
    assert got.get_session_config_entry("session.use_env_allocators") == "0"
    with pytest.raises(GraphError, match="not both"):
        session_options(so, threads=2)


def test_trainer_takes_options_and_they_do_not_change_the_numbers():
    step, data = _step(), _data()
    runs = {}
    for name, opts in (("default", None), ("plain", OrtOptions(threads=1, optimization="disable"))):
        tr = Trainer(step, engine="ort", batch_size=16, seed=0, verbose=False, ort_options=opts)
        runs[name] = [row["loss"] for row in tr.fit(data, epochs=2)]
        if opts is not None:
            got = tr.runner.sess.get_session_options()
            assert got.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    np.testing.assert_allclose(runs["plain"], runs["default"], rtol=1e-5)


@pytest.mark.parametrize("bad", [dict(threads=0), dict(threads=1.5), dict(optimization="max")])
def test_bad_options_say_what_is_wrong(bad):
    with pytest.raises(GraphError, match=next(iter(bad))):
        OrtOptions(**bad)
    with pytest.raises(GraphError, match="SessionOptions"):
        session_options({"threads": 2})
