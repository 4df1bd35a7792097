"""Fine-tuning through the Python API and the command line on graphdl-made models: the
RandomUniformLike round trip and trainer-seeded dropout, refused data, learning-rate schedules,
frozen batch norms, and LoRA adapters merged on export."""
from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import pytest

import graphdl as gd
import passes
from graphdl import nn, optim
from graphdl.core.errors import GraphError
from graphdl.onnx.export import to_onnx
from graphdl.tools.cli import main
from graphdl.training.lora import LoraSpec, add_adapters
from graphdl.training.minibatch import params_as_inputs
from graphdl.training.schedules import make_schedule
from graphdl.training.trainer import Trainer


def _digits(n=300):
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data[:n] / 16).astype(np.float32), d.target[:n].astype(np.int64)


def _dropout_mlp() -> gd.Graph:
    """Inference-free MLP whose dropout draws its mask in the graph (RandomUniformLike)."""
    b = gd.GraphBuilder("drop")
    x = b.input("x", ["N", 64])
    h = nn.Dense(64, 16, "relu", name="d1", seed=0)(x)
    h = nn.Dropout(0.3, mask="random", name="drop")(h)
    return b.build({"logits": nn.Dense(16, 10, name="d2", seed=1)(h)})


def test_exported_random_dropout_imports_and_trains_from_the_trainer_seed(tmp_path, capsys):
    path = tmp_path / "drop.onnx"
    path.write_bytes(to_onnx(_dropout_mlp()).SerializeToString())
    assert main(["inspect", str(path)]) == 0 and "random_uniform_like" in capsys.readouterr().out
    g = gd.from_onnx(str(path))
    x, y = _digits()
    params = []
    for seed in (0, 0, 1):
        step = passes.training_step(g, optim.SGD(lr=0.1), attach="cross_entropy",
                                    logits="logits")
        assert list(step.manifest["masks"]) and not any(
            n.op == "random_uniform_like" for n in step.graph.nodes)
        tr = Trainer(step, batch_size=50, seed=seed, verbose=False)
        tr.fit({"x": x, "labels": y}, 2)
        params.append(step.params(tr.state))
    for k in params[0]:
        assert np.array_equal(params[0][k], params[1][k])
    assert not np.array_equal(params[0]["d1.W"], params[2]["d1.W"])


def test_trainer_refuses_mismatched_arrays_and_non_scalar_metrics():
    b = gd.GraphBuilder("m")
    x, t = b.input("x", ["N", 3]), b.input("t", ["N", 2])
    z = nn.Dense(3, 2, name="d", seed=0)(x)
    g = b.build({"loss": gd.mse_loss(z, t), "z": z})
    step = passes.training_step(g, optim.SGD(), metrics=["z"])
    with pytest.raises(GraphError, match="'z' is not a scalar"):
        Trainer(step)
    step = passes.training_step(g, optim.SGD())
    with pytest.raises(GraphError, match=r"x: 10, t: 8"):
        Trainer(step, verbose=False).fit({"x": np.zeros((10, 3), np.float32),
                                          "t": np.zeros((8, 2), np.float32)}, 1)


def test_schedules_hand_derived():
    step = make_schedule("step", 100, step_size=10, gamma=0.5)
    assert [step(t) for t in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    cos = make_schedule("cosine", 20, warmup=4, min_factor=0.1)
    assert [cos(t) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert cos(4) == 1.0 and cos(12) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(0.5 *
                                                                                   math.pi)))
    assert cos(20) == pytest.approx(0.1)


def test_schedules_match_torch_lr_schedulers():
    torch = pytest.importorskip("torch")
    p = [torch.nn.Parameter(torch.zeros(1))]
    for ours, make in ((make_schedule("step", 30, step_size=7, gamma=0.3),
                        lambda o: torch.optim.lr_scheduler.StepLR(o, 7, 0.3)),
                       (make_schedule("cosine", 30),
                        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 30))):
        opt = torch.optim.SGD(p, lr=1.0)
        sched, got = make(opt), []
        for _ in range(30):
            got.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        np.testing.assert_allclose([ours(t) for t in range(30)], got, rtol=1e-12, atol=1e-15)


def test_trainer_feeds_the_schedule_per_step():
    """SGD's first step at lr * factor(0): warm-up 1/4 of the step without a schedule."""
    x, y = _digits(40)
    b = gd.GraphBuilder("s")
    z = nn.Dense(64, 10, name="d", seed=0)(b.input("x", ["N", 64]))
    g = b.build({"logits": z})
    moves = []
    for sched in (None, make_schedule("constant", 10, warmup=4)):
        step = passes.training_step(g, optim.SGD(lr=0.5), attach="cross_entropy",
                                    logits="logits")
        tr = Trainer(step, batch_size=40, verbose=False, schedule=sched, shuffle=False)
        tr.fit({"x": x, "labels": y}, 1)
        moves.append(step.params(tr.state)["d.W"] - step.initial["d.W"])
    np.testing.assert_allclose(moves[1], moves[0] / 4, rtol=1e-5, atol=1e-7)


def _bn_model() -> gd.Graph:
    b = gd.GraphBuilder("bn")
    x, t = b.input("x", ["N", 4]), b.input("t", ["N", 3])
    h = nn.BatchNorm(4, name="bn")(nn.Dense(4, 4, name="d1", seed=0)(x))
    return b.build({"loss": gd.mse_loss(nn.Dense(4, 3, name="d2", seed=1)(h), t)})


def test_frozen_batch_norm_runs_in_inference_mode():
    g = _bn_model()
    rng = np.random.default_rng(0)
    batch = {"x": rng.standard_normal((8, 4)).astype(np.float32) * 3 + 1,
             "t": rng.standard_normal((8, 3)).astype(np.float32)}
    free = passes.training_step(g, optim.SGD(lr=0.1))
    kinds = {e["input"]: e["kind"] for e in free.manifest["state"]}
    assert kinds["bn.running_mean"] == "running_stat"
    frozen = passes.training_step(g, optim.SGD(lr=0.1), freeze=["bn.*", "d1.*"])
    assert "running_stat" not in {e["kind"] for e in frozen.manifest["state"]}
    out = gd.run(frozen.graph, {**batch, **frozen.initial, **frozen.hyperparam_feeds()})
    init = {v.name: a for v, a in g.initializers.items()}
    h = batch["x"] @ init["d1.W"] + init["d1.b"]
    h = (h - init["bn.running_mean"]) / np.sqrt(init["bn.running_var"] + 1e-5) \
        * init["bn.gamma"] + init["bn.beta"]
    want = np.mean((h @ init["d2.W"] + init["d2.b"] - batch["t"]) ** 2)
    assert float(out["loss"]) == pytest.approx(float(want), rel=1e-5)


def test_lora_trains_only_adapters_and_the_merged_export_equals_the_adapted_model(tmp_path):
    b = gd.GraphBuilder("mlp")
    x = b.input("x", ["N", 64])
    g = b.build({"logits": nn.MLP((64, 24, 10), seed=0)(x)})
    model, run, out = tmp_path / "mlp.onnx", tmp_path / "run", tmp_path / "merged.onnx"
    model.write_bytes(to_onnx(g).SerializeToString())
    xs, ys = _digits()
    np.savez(tmp_path / "d.npz", x=xs, labels=ys)
    assert main(["train-step", str(model), "-o", str(run), "--attach", "cross_entropy",
                 "--logits", "logits", "--lora", "2", "--lora-targets", "dense*.W",
                 "--lr", "0.01"]) == 0
    assert main(["train", str(run), "--data", str(tmp_path / "d.npz"), "--epochs", "2",
                 "--engine", "numpy"]) == 0
    assert main(["export-trained", str(run), "-o", str(out)]) == 0
    state = dict(np.load(run / "state.npz"))
    adapters = sorted(k for k in state if k.endswith((".lora_A", ".lora_B")))
    assert adapters == ["dense1.W.lora_A", "dense1.W.lora_B", "dense2.W.lora_A",
                        "dense2.W.lora_B"]
    assert "dense1.W" not in state and "dense1.b" not in state  # only the adapters train
    adapted, names, _ = add_adapters(gd.from_onnx(str(model)), LoraSpec(2, ["dense*.W"]))
    ag, _ = params_as_inputs(adapted, names)
    want = gd.run(ag, {"x": xs, **{n: state[n] for n in names}})["logits"]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"x": xs})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
    base = gd.run(g, {"x": xs})["logits"]
    assert np.abs(got - base).max() > 1e-2  # the adapters did change the model


@pytest.mark.parametrize("args, words", [
    (["--attach", "cross_entropy", "--logits", "logits", "--trainable", "nope*"],
     ["--trainable 'nope*' matches no parameter", "dense1.W"]),
    ([], ["not a scalar loss", "--attach"]),
    (["--attach", "cross_entropy", "--logits", "logits", "--optimizer", "adam",
      "--momentum", "0.9"], ["--momentum is for sgd and rmsprop"]),
    (["--attach", "cross_entropy", "--logits", "logits", "--lora", "2"],
     ["--lora RANK and --lora-targets"]),
])
def test_train_step_usage_errors_are_one_line(tmp_path, capsys, args, words):
    b = gd.GraphBuilder("mlp")
    g = b.build({"logits": nn.MLP((4, 3, 2), seed=0)(b.input("x", ["N", 4]))})
    model = tmp_path / "m.onnx"
    model.write_bytes(to_onnx(g).SerializeToString())
    assert main(["train-step", str(model), "-o", str(tmp_path / "run"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and all(w in err for w in words), err


def test_onnxruntime_state_keeps_scalar_shapes_across_engines(tmp_path):
    """Scalar state (optim.step, accum.count) trained in onnxruntime stays 0-d, so training
    resumes in the interpreter from the onnxruntime checkpoint."""
    b = gd.GraphBuilder("s")
    g = b.build({"logits": nn.Dense(64, 10, name="d", seed=0)(b.input("x", ["N", 64]))})
    step = passes.training_step(g, optim.Adam(lr=0.01), attach="cross_entropy",
                                logits="logits", options=optim.UpdateOptions(accumulate=2))
    x, y = _digits(64)
    ckpt = str(tmp_path / "state.npz")
    tr = Trainer(step, engine="ort", batch_size=16, verbose=False, checkpoint=ckpt)
    tr.fit({"x": x, "labels": y}, 1)
    assert {k: v.shape for k, v in tr.state.items()} == \
        {k: np.shape(v) for k, v in step.initial.items()}
    again = Trainer(step, engine="numpy", batch_size=16, verbose=False)
    again.load(ckpt)
    again.fit({"x": x, "labels": y}, 2)
    assert int(again.state["optim.step"]) == 4  # 8 micro-batches, updates every 2nd
