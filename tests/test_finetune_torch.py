"""Fine-tuning PyTorch exports from the command line (issue 16's must-shows): attach a loss to
an inference CNN, train only its head, write the weights back; a train-mode export's frozen
batch norm and seeded dropout; same seed, same weights; --resume equals an unbroken run."""
from __future__ import annotations

import shutil
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import graphdl as gd
from graphdl.tools.cli import main
from graphdl.training.minibatch import params_as_inputs

torch = pytest.importorskip("torch")


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
        self.drop = torch.nn.Dropout(0.25)
        self.fc1, self.fc2 = torch.nn.Linear(8 * 4 * 4, 32), torch.nn.Linear(32, 10)

    def forward(self, x):
        h = torch.max_pool2d(self.bn1(torch.relu(self.conv1(x))), 2)
        return self.fc2(torch.relu(self.fc1(self.drop(h.flatten(1)))))


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16).astype(np.float32)[:, None], d.target.astype(np.int64)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A CNN trained briefly by torch on digits 0-4 only, exported for inference and in
    training mode (BatchNorm, Dropout, no loss inside), and the data files."""
    folder = tmp_path_factory.mktemp("cnn")
    x, y = _digits()
    torch.manual_seed(0)
    net, low = CNN(), y[:1200] < 5
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    xl, yl = torch.tensor(x[:1200][low]), torch.tensor(y[:1200][low])
    for i in range(0, len(xl), 50):
        loss = torch.nn.functional.cross_entropy(net(xl[i:i + 50]), yl[i:i + 50])
        opt.zero_grad()
        loss.backward()
        opt.step()
    kw = dict(dynamo=False, opset_version=17, input_names=["x"], output_names=["logits"],
              dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.tensor(x[:2]),), str(folder / "eval.onnx"), **kw)
        torch.onnx.export(net.train(), (torch.tensor(x[:2]),), str(folder / "train.onnx"),
                          training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=False, **kw)
    np.savez(folder / "train.npz", x=x[:1200], labels=y[:1200])
    np.savez(folder / "small.npz", x=x[:200], labels=y[:200])
    return folder, x[1200:], y[1200:]


def _inits(path) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


def _accuracy(path, x, y) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.mean(sess.run(None, {"x": x})[0].argmax(1) == y))


def _cli(*args) -> None:
    assert main([str(a) for a in args]) == 0


def test_head_fine_tuning_of_an_inference_export(exported, tmp_path, capsys):
    folder, x_test, y_test = exported
    run, out = tmp_path / "run", tmp_path / "tuned.onnx"
    _cli("train-step", folder / "eval.onnx", "-o", run, "--attach", "cross_entropy",
         "--logits", "logits", "--trainable", "fc*", "--lr", "0.01")
    _cli("train", run, "--data", folder / "train.npz", "--epochs", "3")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("final_loss=") and " epochs=3 steps=114 accuracy=" in last
    _cli("export-trained", run, "-o", out)
    before, after = _inits(folder / "eval.onnx"), _inits(out)
    assert before.keys() == after.keys()
    for name, arr in before.items():
        if name.startswith("fc"):
            assert not np.array_equal(arr, after[name]), f"head {name} did not change"
        else:
            assert arr.tobytes() == after[name].tobytes(), f"frozen {name} changed"
    acc0, acc1 = _accuracy(folder / "eval.onnx", x_test, y_test), _accuracy(out, x_test, y_test)
    assert acc0 < 0.7 and acc1 > acc0 + 0.2
    m0, m1 = onnx.load(str(folder / "eval.onnx")), onnx.load(str(out))
    assert [n.name for n in m0.graph.node] == [n.name for n in m1.graph.node]
    # the export reproduces graphdl's interpreter run with the trained parameters
    state = dict(np.load(run / "state.npz"))
    g, _ = params_as_inputs(gd.from_onnx(str(folder / "eval.onnx")), ["fc1.weight", "fc1.bias",
                                                                    "fc2.weight", "fc2.bias"])
    want = gd.run(g, {"x": x_test, **{k: state[k] for k in after if k.startswith("fc")}})
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"x": x_test})[0], want["logits"], atol=1e-4)


def test_train_mode_export_frozen_batch_norm_and_seeded_dropout(exported, tmp_path):
    folder = exported[0]
    runs = []
    for name in ("a", "b", "c"):
        run = tmp_path / name
        _cli("train-step", folder / "train.onnx", "-o", run, "--attach", "cross_entropy",
             "--logits", "logits", "--trainable", "fc*")
        seed = "1" if name == "c" else "0"
        _cli("train", run, "--data", folder / "small.npz", "--epochs", "1", "--seed", seed,
             "--engine", "numpy")
        _cli("export-trained", run, "-o", run / "out.onnx")
        runs.append(_inits(run / "out.onnx"))
    import json

    manifest = json.loads((tmp_path / "a" / "train_step.json").read_text())
    assert manifest["masks"], "the imported train-mode Dropout should draw fed masks"
    assert all(e["kind"] != "running_stat" for e in manifest["state"])
    original = _inits(folder / "train.onnx")
    for stat in ("bn1.running_mean", "bn1.running_var"):
        assert original[stat].tobytes() == runs[0][stat].tobytes()
    for k in runs[0]:
        assert runs[0][k].tobytes() == runs[1][k].tobytes(), f"seed 0 twice differs at {k}"
    assert not np.array_equal(runs[0]["fc1.weight"], runs[2]["fc1.weight"])


def test_resume_after_an_interrupted_epoch_equals_an_unbroken_run(exported, tmp_path,
                                                                  monkeypatch):
    folder = exported[0]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    for run in (whole, broken):
        _cli("train-step", folder / "train.onnx", "-o", run, "--attach", "cross_entropy",
             "--logits", "logits", "--optimizer", "adamw")
    _cli("train", whole, "--data", folder / "small.npz", "--epochs", "3", "--batch-size", "50")
    from graphdl.training import step_runner

    real, calls = step_runner.OrtRunner.__call__, []

    def flaky(self, feeds, hp):
        calls.append(1)
        if len(calls) == 6:  # second step of epoch 2 (4 steps per epoch)
            raise KeyboardInterrupt
        return real(self, feeds, hp)

    monkeypatch.setattr(step_runner.OrtRunner, "__call__", flaky)
    with pytest.raises(KeyboardInterrupt):
        main(["train", str(broken), "--data", str(folder / "small.npz"), "--epochs", "3",
              "--batch-size", "50"])
    monkeypatch.setattr(step_runner.OrtRunner, "__call__", real)
    _cli("train", broken, "--data", folder / "small.npz", "--epochs", "3", "--batch-size", "50",
         "--resume")
    a, b = np.load(whole / "state.npz"), np.load(broken / "state.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        if k != "graphdl.trainer.meta":
            assert a[k].tobytes() == b[k].tobytes(), k
    shutil.rmtree(whole)


def test_bad_data_is_one_line(exported, tmp_path, capsys):
    folder = exported[0]
    run = tmp_path / "run"
    _cli("train-step", folder / "eval.onnx", "-o", run, "--attach", "cross_entropy",
         "--logits", "logits")
    x, y = _digits()
    np.savez(tmp_path / "bad.npz", x=x[:100], labels=y[:90])
    capsys.readouterr()
    assert main(["train", str(run), "--data", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "x: 100" in err and "labels: 90" in err


class _EncoderClassifier(torch.nn.Module):
    """Digits as 8 rows of 8 pixels: a linear embedding, one post-norm TransformerEncoder
    layer (GELU), mean over the rows, a linear head."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Linear(8, 16)
        layer = torch.nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, activation="gelu",
                                                 batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.encoder(self.emb(x)).mean(1))


def test_lora_on_a_transformer_encoder_export_trains_only_adapters_and_merges(tmp_path):
    """LoRA rank 2 on every matrix-product weight of a PyTorch TransformerEncoder export:
    training changes only the adapters (the base weights are not in the trained state, and the
    exported model's other initializers are bit-identical), and the merged export run in
    onnxruntime equals the adapted model run in graphdl (1e-5)."""
    from graphdl.training.lora import LoraSpec, add_adapters

    torch.manual_seed(0)
    model, run, out = tmp_path / "enc.onnx", tmp_path / "run", tmp_path / "merged.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_EncoderClassifier().eval(), (torch.randn(2, 8, 8),), str(model),
                          opset_version=17, dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "N"}})
    xs, ys = _digits()
    xs = xs.reshape(-1, 8, 8)
    np.savez(tmp_path / "d.npz", x=xs, labels=ys)
    targets = "onnx::MatMul_*,*out_proj.weight,head.weight"
    assert main(["train-step", str(model), "-o", str(run), "--attach", "cross_entropy",
                 "--logits", "logits", "--lora", "2", "--lora-targets", targets,
                 "--lr", "0.01"]) == 0
    assert main(["train", str(run), "--data", str(tmp_path / "d.npz"), "--epochs", "2",
                 "--engine", "ort", "--batch-size", "64"]) == 0
    assert main(["export-trained", str(run), "-o", str(out)]) == 0
    state = dict(np.load(run / "state.npz"))
    spec = LoraSpec(2, targets.split(","))
    adapted, names, _ = add_adapters(gd.from_onnx(str(model)), spec)
    assert names and all(n.endswith((".lora_A", ".lora_B")) for n in names)
    original = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(model)).graph.initializer}
    merged = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    assert not set(original) & set(state)  # no base weight, bias or norm trained
    changed = {k for k in original if not np.array_equal(original[k], merged[k])}
    assert changed and all(k.startswith("onnx::MatMul_") or k.endswith("weight")
                           for k in changed)  # only LoRA targets take merged adapters
    assert not any(k.endswith("bias") for k in changed)
    ag, _ = params_as_inputs(adapted, names)
    want = gd.run(ag, {"x": xs, **{n: state[n] for n in names}})["logits"]
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"x": xs})[0]
    np.testing.assert_allclose(got, want, atol=1e-5)
