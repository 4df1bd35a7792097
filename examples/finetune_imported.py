"""Fine-tune an imported ONNX model in stock onnxruntime: a CNN trained on digits 0-4 learns
digits 5-9 with a new head while its backbone stays frozen.

    python examples/finetune_imported.py [--workdir DIR] [--pretrain auto|pytorch|graphdl]

1. The pretrained model: PyTorch (when installed) trains a CNN (conv, batch norm, dropout,
   two dense layers) on digits 0-4 and exports it for inference; without PyTorch, graphdl
   builds the same CNN and pretrains it with the very commands below.
2. A new head: the last layer's weights are re-drawn in the .onnx file (small random values).
3. ``graphdl train-step --attach cross_entropy --trainable 'fc*'`` gives the inference model
   a loss and a training step that trains the dense head (conv and batch norm stay frozen);
   ``graphdl train`` runs it in onnxruntime on digits 5-9;
   ``graphdl export-trained`` writes the original model back with the trained head.
Prints ``before_accuracy=... after_accuracy=...`` on held-out 5-9 and the parameter counts.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from graphdl.tools.cli import main as graphdl

SEED = 0


def load_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return train_test_split(x, y.astype(np.int64), test_size=0.25, random_state=SEED,
                            stratify=y)


def torch_pretrained(x: np.ndarray, y: np.ndarray, path: str) -> None:
    """PyTorch trains the CNN on (x, y) and exports it for inference."""
    import warnings

    import torch

    class CNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.BatchNorm2d(16)
            self.drop = torch.nn.Dropout(0.25)
            self.fc1, self.fc2 = torch.nn.Linear(16 * 4 * 4, 64), torch.nn.Linear(64, 10)

        def forward(self, x):
            h = torch.max_pool2d(self.bn1(torch.relu(self.conv1(x))), 2)
            return self.fc2(torch.relu(self.fc1(self.drop(h.flatten(1)))))

    torch.manual_seed(SEED)
    net = CNN()
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(8):
        for idx in torch.randperm(len(xt)).split(32):
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (xt[:2],), path, dynamo=False, opset_version=17,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})


def graphdl_pretrained(x: np.ndarray, y: np.ndarray, path: str, work: str) -> None:
    """The same CNN built by graphdl and pretrained with train-step, train, export-trained."""
    import graphdl as gd
    from graphdl import nn
    from graphdl.onnx.export import to_onnx

    b = gd.GraphBuilder("cnn")
    h = nn.Conv2d(1, 16, 3, padding=1, activation="relu", name="conv1", seed=1)(
        b.input("x", ["N", 1, 8, 8]))
    h = nn.Flatten()(nn.MaxPool2d(2)(h))
    h = nn.Dense(16 * 4 * 4, 64, "relu", name="fc1", seed=2)(h)
    g = b.build({"logits": nn.Dense(64, 10, name="fc2", seed=3)(h)})
    fresh, run = os.path.join(work, "fresh.onnx"), os.path.join(work, "pretrain")
    with open(fresh, "wb") as f:
        f.write(to_onnx(g).SerializeToString())
    np.savez(os.path.join(work, "pre.npz"), x=x, labels=y)
    cli("train-step", fresh, "-o", run, "--attach", "cross_entropy", "--logits", "logits",
        "--lr", "0.01")
    cli("train", run, "--data", os.path.join(work, "pre.npz"), "--epochs", "8")
    cli("export-trained", run, "-o", path)


def new_head(path: str, head: list[str]) -> None:
    """Re-draws the head's weights (small random values, zero bias) in the .onnx file."""
    model = onnx.load(path)
    rng = np.random.default_rng(SEED)
    for t in model.graph.initializer:
        if t.name in head:
            old = numpy_helper.to_array(t)
            new = np.zeros_like(old) if old.ndim == 1 else \
                (rng.standard_normal(old.shape) * 0.05).astype(old.dtype)
            t.CopyFrom(numpy_helper.from_array(new, t.name))
    onnx.save(model, path)


def accuracy(path: str, x: np.ndarray, y: np.ndarray) -> float:
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return float(np.mean(sess.run(None, {"x": x})[0].argmax(1) == y))


def cli(*args: str) -> None:
    status = graphdl(list(args))
    if status:
        raise SystemExit(f"graphdl {args[0]} failed with status {status}")


def pretrain(x: np.ndarray, y: np.ndarray, path: str, work: str, by: str) -> str:
    """Writes the pretrained model to ``path``; returns who trained it."""
    if by in ("auto", "pytorch"):
        try:
            import torch  # noqa: F401
        except ImportError:
            if by == "pytorch":
                raise
        else:
            torch_pretrained(x, y, path)
            return "pytorch"
    graphdl_pretrained(x, y, path, work)
    return "graphdl"


def main(work: str, by: str = "auto") -> None:
    x_tr, x_te, y_tr, y_te = load_data()
    low_tr, high_tr, high_te = y_tr < 5, y_tr >= 5, y_te >= 5
    model = os.path.join(work, "pretrained.onnx")
    source = pretrain(x_tr[low_tr], y_tr[low_tr], model, work, by)
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(model).graph.initializer}
    head = [n for n in inits if n.startswith("fc2.")]
    trainable = [n for n in inits if n.startswith("fc")]
    new_head(model, head)
    before = accuracy(model, x_te[high_te], y_te[high_te])
    run, out = os.path.join(work, "finetune"), os.path.join(work, "finetuned.onnx")
    np.savez(os.path.join(work, "new.npz"), x=x_tr[high_tr], labels=y_tr[high_tr])
    cli("train-step", model, "-o", run, "--attach", "cross_entropy", "--logits", "logits",
        "--trainable", "fc*", "--optimizer", "adam", "--lr", "0.005")
    cli("train", run, "--data", os.path.join(work, "new.npz"), "--epochs", "15",
        "--batch-size", "32", "--seed", str(SEED))
    cli("export-trained", run, "-o", out)
    after = accuracy(out, x_te[high_te], y_te[high_te])
    total = sum(a.size for a in inits.values() if a.dtype.kind == "f")
    trained = sum(inits[n].size for n in trainable)
    print(f"pretrained_by={source} params_total={total} params_trained={trained} "
          f"params_frozen={total - trained}")
    print(f"before_accuracy={before:.4f} after_accuracy={after:.4f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", help="keep the files here (default: a temporary folder)")
    p.add_argument("--pretrain", choices=["auto", "pytorch", "graphdl"], default="auto",
                   help="who pretrains the CNN (auto: PyTorch when installed)")
    args = p.parse_args()
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        main(args.workdir, args.pretrain)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp, args.pretrain)
