"""Data-parallel training: the split step equals the one-graph step; under ``mpiexec -n 2`` and
``-n 3`` (uneven slices) training gives the parameters of one process at the same global batch,
in both engines; a rank that dies, hangs or raises ends the job quickly with the rank named and
the last checkpoint loadable, and training resumes from it exactly.

The MPI tests start tests/dp_worker.py under the mpiexec of the ``distributed`` extra and skip
visibly without it."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl import nn, optim
from graphdl.training.data_parallel import DataParallelTrainer, shard
from graphdl.engine.runtime import run
from graphdl.training.step_split import split_step
from graphdl.training.step import TrainStep
from graphdl.training.trainer import META, Trainer
from tests import dp_worker

WORKER = os.path.join(os.path.dirname(__file__), "dp_worker.py")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOL = {"float32": 1e-5, "float64": 1e-10}


def _mpiexec() -> str:
    pytest.importorskip("mpi4py", reason="the distributed extra (mpi4py, mpich) is not installed")
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep +
                         os.environ.get("PATH", ""))
    if not found:
        pytest.skip("no mpiexec (pip install 'graphdl[distributed]' brings mpich's)")
    return found


@pytest.fixture(scope="module")
def digits_file(tmp_path_factory) -> str:
    from sklearn.datasets import load_digits

    path = str(tmp_path_factory.mktemp("digits") / "digits.npz")
    np.savez(path, **dict(zip("xy", load_digits(return_X_y=True))))
    return path


def _launch(ranks: int, data: str, *args: str,
            timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, WORKER, *args, "--data", data]
    res = subprocess.run(cmd,
                         capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    return res, time.monotonic() - start


def _assert_close(got, want, dtype: str, what: str) -> None:
    scale = max(np.max(np.abs(want)), 1e-30)
    assert np.max(np.abs(got - want)) / scale <= TOL[dtype], what


@pytest.fixture(scope="module")
def single():
    """Every configuration trained for one epoch in this one process (the one-graph step)."""
    out = {}
    for config in dp_worker.CONFIGS + [dp_worker.BN_CONFIG]:
        t = dp_worker.trainer(config)
        rows = dp_worker.BATCH if config == dp_worker.BN_CONFIG else dp_worker.ROWS
        t.fit(dp_worker.digits(config.split("/")[2], rows), 1)
        out[config] = t.state
    return out


# -- without MPI --------------------------------------------------------------------------------


def test_shard_gives_contiguous_slices_covering_the_batch():
    assert [shard(64, r, 3) for r in range(3)] == [(0, 22), (22, 43), (43, 64)]
    assert [shard(44, r, 2) for r in range(2)] == [(0, 22), (22, 44)]
    assert [shard(2, r, 3) for r in range(3)] == [(0, 1), (1, 2), (2, 2)]


def _bn_dropout_step():
    b = gd.GraphBuilder("bn")
    x, y = b.input("x", ["N", 6], "float64"), b.input("y", ["N"], "int64")
    net = nn.Sequential(nn.Dense(6, 8, "relu", seed=1), nn.BatchNorm(8), nn.Dropout(0.3),
                        nn.Dense(8, 3, seed=2))
    fwd = b.build({"loss": gd.softmax_cross_entropy(net(x), y)})
    return passes.training_step(fwd, optim.Adam(lr=0.05))


@pytest.mark.parametrize("engine", ["numpy", "ort"])
def test_gradient_then_update_graph_equals_the_one_graph_step(engine, tmp_path):
    """Split a step read back from its files (so by value names, as `graphdl train` would):
    running the gradient graph then the update graph gives every output of the whole step."""
    step = _bn_dropout_step()
    step.save(str(tmp_path))
    loaded = TrainStep.load(str(tmp_path))
    sp = split_step(loaded)
    rng = np.random.default_rng(0)
    batch = {"x": rng.standard_normal((10, 6)), "y": rng.integers(0, 3, 10)}
    batch.update(step.draw_masks(rng, batch))
    hp = step.hyperparam_feeds()
    whole = run(step.graph, {**batch, **step.initial, **hp}, backend=engine)
    g = run(sp.grad_graph, {**batch, **{k: step.initial[k] for k in
                                        [v.name for v in sp.grad_graph.inputs]
                                        if k in step.initial}}, backend=engine)
    upd_feeds = {**step.initial, **hp, **{v: g[v] for v in sp.split["gradients"].values()}}
    u = run(sp.update_graph, {v.name: upd_feeds[v.name] for v in sp.update_graph.inputs},
            backend=engine)
    assert set(sp.split["grad_outputs"]) >= {"loss", "batchnorm1.running_mean.next"}
    for name, want in whole.items():
        got = u[name] if name in u else g[name]
        # the read-back step runs batch norm as its exported decomposition, the built one as
        # batch_norm_core's kernel: float64 rounding apart (~1e-12), well inside 1e-10
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13, err_msg=name)
    paths = sp.save(str(tmp_path))
    import onnx

    for key in ("grad", "update"):
        onnx.checker.check_model(onnx.load(paths[key]), full_check=True)
    assert TrainStep.load(str(tmp_path)).manifest["split"] == sp.split


def test_split_names_a_parameter_without_a_gradient_value():
    step = _bn_dropout_step()
    manifest = {**step.manifest, "state": step.manifest["state"] +
                [{"input": "ghost", "output": "ghost.next", "kind": "param"}]}
    with pytest.raises(gd.GraphError, match="no value 'ghost_grad' \\(the gradient of trained "
                                            "parameter 'ghost'\\)"):
        split_step(TrainStep(step.graph, manifest, step.initial))


def test_one_process_trainer_is_the_one_graph_trainer():
    """With one process the data-parallel trainer draws the same batches and masks as
    Trainer and runs the same one-graph step: identical losses and state."""
    step, data = _bn_dropout_step(), {"x": np.random.default_rng(1).standard_normal((50, 6)),
                                      "y": np.arange(50) % 3}
    a = Trainer(step, batch_size=16, seed=4, verbose=False)
    b = DataParallelTrainer(step, batch_size=16, seed=4, verbose=False)
    assert [r["loss"] for r in a.fit(data, 2)] == [r["loss"] for r in b.fit(data, 2)]
    for k, v in a.state.items():
        np.testing.assert_array_equal(b.state[k], v, err_msg=k)


# -- under mpiexec -------------------------------------------------------------------------------


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_give_the_single_process_parameters(ranks, single, digits_file, tmp_path):
    """MLP (dropout) and CNN, numpy and ort, float32 (SGD) and float64 (Adam), one epoch of
    300 digits in global batches of 64 (3 ranks: slices 22/21/21, last batch 15/15/14)."""
    out = tmp_path / "dp.npz"
    res, _ = _launch(ranks, digits_file, str(out))
    assert res.returncode == 0, res.stderr[-2000:]
    with np.load(out) as got:
        for config, state in single.items():
            if config == dp_worker.BN_CONFIG:
                continue
            dtype = config.split("/")[2]
            for k, want in state.items():
                _assert_close(got[f"{config}/{k}"], want, dtype, f"{config} {k}")
        _check_batch_norm_statistics(got, ranks)


def _check_batch_norm_statistics(got, ranks: int) -> None:
    """Batch norm normalises per rank. After one step from running stats (0, 1) at momentum
    0.1, by hand: the running mean is 0.1 x the global batch mean of the layer's input; the
    running variance 0.9 + 0.1 x the share-weighted unbiased variances of the rank slices."""
    step = dp_worker.step("bn", "float64")
    data = dp_worker.digits("float64", dp_worker.BATCH)
    h = data["x"] @ step.initial["dense1.W"] + step.initial["dense1.b"]
    slices = [h[slice(*shard(len(h), r, ranks))] for r in range(ranks)]
    var = sum(len(s) / len(h) * s.var(axis=0, ddof=1) for s in slices)
    bn = f"{dp_worker.BN_CONFIG}/batchnorm1"
    _assert_close(got[f"{bn}.running_mean"], 0.1 * h.mean(axis=0), "float64", "running mean")
    _assert_close(got[f"{bn}.running_var"], 0.9 + 0.1 * var, "float64", "running var")


def test_killed_rank_ends_the_job_and_training_resumes_from_the_last_checkpoint(digits_file,
                                                                                tmp_path):
    """Rank 1 is SIGKILLed in epoch 2 (its 9th all-reduce: start-up, 5 steps of epoch 1, 3 of
    epoch 2): the job ends well within 30 s, the launcher reports the process that the trainer
    listed as rank 1, the epoch-1 checkpoint loads; resumed, the run ends where an unbroken
    run ends."""
    config, ck = "mlp/numpy/float64", str(tmp_path / "ck.npz")
    res, seconds = _launch(2, digits_file, str(tmp_path / "x.npz"), "--only", config,
                           "--epochs", "3", "--checkpoint", ck, "--fail", "kill",
                           "--fail-at", "9", "--verbose")
    assert res.returncode != 0 and seconds < 30
    pid = re.search(r"pids 0:\d+ 1:(\d+)", res.stdout).group(1)
    assert f"PID {pid}" in res.stdout + res.stderr
    reference = dp_worker.trainer(config)
    data = dp_worker.digits("float64")
    reference.fit(data, 1)
    loaded = Trainer(dp_worker.step("mlp", "float64"), verbose=False)
    loaded.load(ck)
    assert loaded.epoch == 1
    for k, v in reference.state.items():
        _assert_close(loaded.state[k], v, "float64", k)
    out = tmp_path / "resumed.npz"
    res, _ = _launch(2, digits_file, str(out), "--only", config, "--epochs", "3",
                     "--checkpoint", ck, "--resume")
    assert res.returncode == 0, res.stderr[-2000:]
    reference.fit(data, 3)
    with np.load(out) as got:
        for k, v in reference.state.items():
            _assert_close(got[f"{config}/{k}"], v, "float64", k)


def test_hung_rank_is_named_by_the_others_within_the_timeout(digits_file, tmp_path):
    """Rank 2 of 3 stops (SIGSTOP) mid-epoch; the launcher cannot see it, so the others' 2 s
    collective timeout and liveness pings name it."""
    res, seconds = _launch(3, digits_file, str(tmp_path / "x.npz"), "--only",
                           "mlp/numpy/float32", "--epochs", "2", "--fail", "hang",
                           "--fail-rank", "2", "--fail-at", "4", "--timeout", "2")
    assert res.returncode != 0 and seconds < 30
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert errors and all(ln.startswith("error: rank 2 stopped responding") for ln in errors)
    assert "epoch 1 step 3" in errors[0]


def test_rank_that_raises_ends_the_job_with_one_line_naming_it(digits_file, tmp_path):
    res, seconds = _launch(2, digits_file, str(tmp_path / "x.npz"), "--only",
                           "mlp/numpy/float32", "--fail", "raise", "--fail-rank", "1",
                           "--fail-at", "3")
    assert res.returncode != 0 and seconds < 30
    assert "error: rank 1: injected failure" in res.stderr.splitlines()
    assert "Traceback" not in res.stderr


# -- graphdl train ------------------------------------------------------------------------------


def _train_dir(tmp_path, name: str) -> tuple[str, str]:
    """A training step written into tmp_path/name, and the digits in tmp_path/data.npz."""
    folder, data = str(tmp_path / name), str(tmp_path / "data.npz")
    dp_worker.step("mlp", "float32").save(folder)
    if not os.path.exists(data):
        np.savez(data, **dp_worker.digits("float32"))
    return folder, data


def test_graphdl_train_resumes_exactly(tmp_path, capsys):
    from graphdl.tools.cli import main

    straight, data = _train_dir(tmp_path, "straight")
    resumed, _ = _train_dir(tmp_path, "resumed")
    common = ["--data", data, "--batch-size", "64", "--engine", "numpy", "--seed", "2"]
    assert main(["train", straight, *common, "--epochs", "2"]) == 0
    assert main(["train", resumed, *common, "--epochs", "1"]) == 0
    assert main(["train", resumed, *common, "--epochs", "2", "--resume"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("final_loss=") and "epochs=2 steps=10" in last
    with np.load(os.path.join(straight, "state.npz")) as a, \
            np.load(os.path.join(resumed, "state.npz")) as b:
        assert "dense1.W" in a.files
        for k in a.files:
            if k != META:  # it holds timings
                np.testing.assert_array_equal(b[k], a[k], err_msg=k)


def test_graphdl_train_under_mpiexec_equals_one_process(tmp_path):
    from graphdl.tools.cli import main

    single, data = _train_dir(tmp_path, "single")
    multi, _ = _train_dir(tmp_path, "multi")
    args = ["--data", data, "--batch-size", "64", "--no-shuffle", "--epochs", "1"]
    assert main(["train", single, *args]) == 0
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "graphdl", "train",
                          multi, *args], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1].endswith("epochs=1 steps=5 ranks=2")
    with np.load(os.path.join(single, "state.npz")) as a, \
            np.load(os.path.join(multi, "state.npz")) as b:
        for k in a.files:
            if k != META:
                _assert_close(b[k], a[k], "float32", k)


def test_example_under_mpiexec_matches_one_process():
    """examples/data_parallel_digits.py (3 epochs): 2 ranks reach the single-process
    parameters (float32 rounding only) and a trained CNN's accuracy."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([_mpiexec(), "-n", "2", sys.executable,
                          os.path.join(ROOT, "examples", "data_parallel_digits.py"),
                          "--epochs", "3"],
                         capture_output=True, text=True, timeout=170, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    fields = dict(kv.split("=") for kv in res.stdout.strip().splitlines()[-1].split())
    assert fields["ranks"] == "2"
    assert float(fields["max_param_diff_vs_single"]) < 1e-5
    assert float(fields["test_accuracy"]) > 0.9


def test_graphdl_train_without_a_step_is_a_one_line_error(tmp_path, capsys):
    from graphdl.tools.cli import main

    assert main(["train", str(tmp_path), "--data", str(tmp_path / "d.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"graphdl train: error: {tmp_path}: no train_step.onnx (write it with "
                   "graphdl train-step)"]
