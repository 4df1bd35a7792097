"""Train a digits MLP (64-128-64-10, ReLU, Adam) entirely in stock onnxruntime.

graphdl builds the whole training step (forward, backward, Adam update) as one standard ONNX
model and writes it with its JSON manifest; the loop below then uses only onnxruntime, NumPy and
the manifest: feed the batch, the hyperparameters and the carried state, and feed each
``NAME.next`` output back as input ``NAME`` next step. The learning rate is a graph input, so
its decay schedule is only a changing feed. Test accuracy comes from the exported
inference model, also run in onnxruntime.

    python examples/train_in_onnxruntime.py [--out DIR] [--epochs N]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import onnxruntime as ort
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP
from graphdl.training.minibatch import params_as_inputs
from graphdl.core.fileio import write_atomic

SIZES, SEED = (64, 128, 64, 10), 0


def export(out: str) -> None:
    """Writes train_step.onnx, train_step.json, train_step.init.npz and infer.onnx to ``out``."""
    net = MLP(SIZES, "relu", seed=SEED)
    b = gd.GraphBuilder("digits_train")
    x, y = b.input("x", ["N", 64]), b.input("y", ["N"], "int64")
    step = passes.training_step(b.build({"loss": gd.softmax_cross_entropy(net(x), y)}),
                                optim.Adam(lr=0.002))
    step.save(out)
    b = gd.GraphBuilder("digits_infer")
    infer, _ = params_as_inputs(b.build({"logits": net(b.input("x", ["N", 64]))}))
    write_atomic(os.path.join(out, "infer.onnx"), gd.to_onnx(infer).SerializeToString())


def session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def train(out: str, epochs: int, batch_size: int = 32) -> dict:
    """The training loop: onnxruntime + NumPy + the manifest, no graphdl."""
    manifest = json.load(open(os.path.join(out, "train_step.json")))
    state = dict(np.load(os.path.join(out, "train_step.init.npz")))
    hp = {k: np.asarray(v, np.float32) for k, v in manifest["hyperparams"].items()}
    step, infer = session(os.path.join(out, "train_step.onnx")), session(
        os.path.join(out, "infer.onnx"))
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split((x / 16).astype(np.float32), y.astype(np.int64),
                                              test_size=0.2, random_state=SEED, stratify=y)
    outputs = [manifest["loss"], *manifest["next_step"]]
    rng, start, loss = np.random.default_rng(SEED), time.perf_counter(), float("nan")
    for epoch in range(1, epochs + 1):
        hp["lr"] = np.asarray(0.002 * 0.85 ** (epoch - 1), np.float32)  # a schedule: just a feed
        order, losses = rng.permutation(len(x_tr)), []
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            res = step.run(outputs, {"x": x_tr[idx], "y": y_tr[idx], **state, **hp})
            losses.append(float(res[0]))
            state = {manifest["next_step"][o]: v for o, v in zip(outputs[1:], res[1:])}
        loss = float(np.mean(losses))
        acc = accuracy(infer, state, manifest, x_te, y_te)
        print(f"[ort] epoch {epoch:2d}/{epochs} loss={loss:.4f} test_accuracy={acc:.4f}",
              flush=True)
    return {"engine": "ort", "test_accuracy": accuracy(infer, state, manifest, x_te, y_te),
            "final_loss": loss, "seconds": time.perf_counter() - start}


def accuracy(infer: ort.InferenceSession, state: dict, manifest: dict, x: np.ndarray,
             y: np.ndarray) -> float:
    params = {e["input"]: state[e["input"]] for e in manifest["state"] if e["kind"] == "param"}
    (logits,) = infer.run(["logits"], {"x": x, **params})
    return float(np.mean(np.argmax(logits, axis=1) == y))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for the exported models (default: a temp folder)")
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="graphdl-train-")
    export(out)
    print(f"wrote {out}/train_step.onnx, train_step.json, train_step.init.npz, infer.onnx")
    r = train(out, args.epochs)
    print(f"engine={r['engine']} test_accuracy={r['test_accuracy']:.4f} "
          f"final_loss={r['final_loss']:.4f} seconds={r['seconds']:.1f} out={out}")


if __name__ == "__main__":
    main()
