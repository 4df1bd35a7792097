"""The Trainer: both engines (onnxruntime through IO binding) agree, checkpoints resume
exactly, and a process killed while saving leaves the previous checkpoint loadable."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import nn, optim
from graphdl.training.trainer import Trainer


def _step(opt=None, hidden=12):
    b = gd.GraphBuilder("clf")
    net = nn.Sequential(nn.Dense(5, hidden, "relu", seed=1), nn.Dropout(0.2),
                        nn.Dense(hidden, 3, seed=2))
    x, y = b.input("x", ["N", 5], "float64"), b.input("y", ["N"], "int64")
    fwd = b.build({"loss": gd.softmax_cross_entropy(net(x), y)})
    return passes.training_step(fwd, opt or optim.Adam(lr=0.02))


def _data(n=100):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 5))
    return {"x": x, "y": (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1)}


def test_onnxruntime_with_io_binding_matches_interpreter():
    step = _step()
    runs = {}
    for engine in ("numpy", "ort"):
        t = Trainer(step, engine, batch_size=16, seed=3, verbose=False)
        runs[engine] = (t.fit(_data(), 3), t.state)
    (h_np, s_np), (h_ort, s_ort) = runs["numpy"], runs["ort"]
    np.testing.assert_allclose([r["loss"] for r in h_ort], [r["loss"] for r in h_np], rtol=1e-9)
    for k in s_np:
        np.testing.assert_allclose(s_ort[k], s_np[k], rtol=1e-9, atol=1e-12, err_msg=k)
    assert h_np[-1]["loss"] < h_np[0]["loss"]
    assert int(s_np["optim.step"]) == 3 * 7  # 100 rows in batches of 16: 7 steps an epoch


@pytest.mark.parametrize("engine", ["numpy", "ort"])
def test_resuming_from_a_checkpoint_continues_exactly(engine, tmp_path):
    step, data = _step(optim.SGD(lr=0.05, momentum=0.9)), _data()
    straight = Trainer(step, engine, batch_size=16, seed=5, verbose=False)
    straight.fit(data, 4)
    ck = str(tmp_path / "ck.npz")
    first = Trainer(step, engine, batch_size=16, seed=5, verbose=False, checkpoint=ck)
    first.fit(data, 2)
    resumed = Trainer(step, engine, batch_size=16, seed=999, verbose=False)
    resumed.load(ck)
    assert resumed.epoch == 2
    resumed.fit(data, 4)
    assert [r["loss"] for r in resumed.history] == [r["loss"] for r in straight.history]
    for k, v in straight.state.items():
        np.testing.assert_array_equal(resumed.state[k], v, err_msg=k)


_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import graphdl as gd, passes
    from graphdl import nn, optim
    from graphdl.training.trainer import Trainer
    b = gd.GraphBuilder("big")
    x = b.input("x", ["N", 600], "float64")
    fwd = b.build({"loss": gd.reduce_mean(nn.Dense(600, 1500, seed=1)(x))})
    t = Trainer(passes.training_step(fwd, optim.Adam()), verbose=False)
    for k in range(1, 10**6):
        t.epoch = k
        t.save(sys.argv[1])
        print(k, flush=True)
""")


def test_killed_during_save_leaves_previous_checkpoint_loadable(tmp_path):
    path = str(tmp_path / "ck.npz")
    script = tmp_path / "saver.py"
    script.write_text(_SAVER)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen([sys.executable, str(script), path], stdout=subprocess.PIPE,
                                text=True, env=env)
        first = proc.stdout.readline()  # one checkpoint is complete
        assert first.strip().isdigit(), first
        time.sleep(delay)
        proc.kill()  # SIGKILL, most likely in the middle of writing the next one
        proc.wait()
        t = Trainer(_big_step(), verbose=False)
        t.load(path)
        assert t.epoch >= int(first)
        np.testing.assert_array_equal(t.state["dense1.W"], t.step.initial["dense1.W"])


_HANGER = _SAVER.split("for k in range")[0] + textwrap.dedent("""
    import os, time
    t.epoch = 1
    t.save(sys.argv[1])
    os.fsync = lambda fd: time.sleep(600)  # the next save stops after writing, before rename
    t.epoch = 2
    print("saving", flush=True)
    t.save(sys.argv[1])
""")


def test_killed_mid_save_deterministically_keeps_the_old_checkpoint(tmp_path):
    """The kill lands while the new checkpoint is half done (written, not yet renamed)."""
    path = tmp_path / "ck.npz"
    script = tmp_path / "hanger.py"
    script.write_text(_HANGER)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert proc.stdout.readline().strip() == "saving"
    deadline = time.time() + 60
    while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):  # fileio's temp file
        assert time.time() < deadline, "the second save never started writing"
        time.sleep(0.01)
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    t = Trainer(_big_step(), verbose=False)
    t.load(str(path))
    assert t.epoch == 1


def _big_step():
    b = gd.GraphBuilder("big")
    x = b.input("x", ["N", 600], "float64")
    fwd = b.build({"loss": gd.reduce_mean(nn.Dense(600, 1500, seed=1)(x))})
    return passes.training_step(fwd, optim.Adam())


def test_metrics_are_step_outputs_and_lr_schedule_is_a_feed():
    """A forward value named as a metric is reported per epoch; lr = 0 freezes the weights."""
    b = gd.GraphBuilder("reg")
    x, t = b.input("x", ["N", 5], "float64"), b.input("t", ["N", 1], "float64")
    pred = nn.Dense(5, 1, seed=4)(x)
    fwd = b.build({"loss": gd.mse_loss(pred, t), "mae": gd.reduce_mean(abs(pred - t))})
    step = passes.training_step(fwd, optim.SGD(lr=0.1), metrics=["mae"])
    data = {"x": _data()["x"], "t": _data()["x"][:, :1] * 2.0}
    t = Trainer(step, "ort", batch_size=100, verbose=False)
    t.set_hyperparams(lr=0.0)
    (row,) = t.fit(data, 1)
    np.testing.assert_array_equal(t.state["dense1.W"], step.initial["dense1.W"])
    want = gd.run(fwd, data)  # the initial weights are fwd's initializers
    np.testing.assert_allclose(row["mae"], want["mae"], rtol=1e-9)
    np.testing.assert_allclose(row["loss"], want["loss"], rtol=1e-9)
    t.set_hyperparams(lr=0.1)
    t.fit(data, 3)
    assert t.history[-1]["loss"] < row["loss"]
