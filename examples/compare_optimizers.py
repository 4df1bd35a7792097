"""The digits MLP (64-64-10, ReLU) trained with each of the chapter's optimisers by the exported
training step in onnxruntime, from the same initial weights: full-batch gradient descent,
minibatch SGD, SGD with momentum, Adagrad, Adadelta and Adam. Prints the final training loss and
test accuracy of each.

    python examples/compare_optimizers.py
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP
from graphdl.training.minibatch import params_as_inputs
from graphdl.training.trainer import Trainer

SEED, SIZES = 0, (64, 64, 10)

#: name -> (optimiser, batch size, epochs); full-batch descent takes one step an epoch
RUNS = {
    "gradient_descent": (lambda: optim.SGD(lr=0.5), None, 150),
    "minibatch_sgd": (lambda: optim.SGD(lr=0.1), 32, 15),
    "momentum": (lambda: optim.SGD(lr=0.02, momentum=0.9), 32, 15),
    "adagrad": (lambda: optim.Adagrad(lr=0.05), 32, 15),
    "adadelta": (lambda: optim.Adadelta(lr=1.0), 32, 15),
    "adam": (lambda: optim.Adam(lr=0.002), 32, 15),
}


def load() -> tuple[np.ndarray, ...]:
    x, y = load_digits(return_X_y=True)
    return tuple(train_test_split((x / 16).astype(np.float32), y.astype(np.int64),
                                  test_size=0.2, random_state=SEED, stratify=y))


def build() -> tuple[gd.Graph, gd.Graph]:
    net = MLP(SIZES, "relu", seed=SEED)
    b = gd.GraphBuilder("digits_train")
    x, y = b.input("x", ["N", 64]), b.input("y", ["N"], "int64")
    train = b.build({"loss": gd.softmax_cross_entropy(net(x), y)})
    b = gd.GraphBuilder("digits")
    infer, _ = params_as_inputs(b.build({"logits": net(b.input("x", ["N", 64]))}))
    return train, infer


def main() -> None:
    x_tr, x_te, y_tr, y_te = load()
    train, infer = build()
    results = {}
    for name, (make, batch, epochs) in RUNS.items():
        step = passes.training_step(train, make())

        def evaluate(state, step=step):
            logits = gd.run(infer, {"x": x_te, **step.params(state)}, backend="ort")["logits"]
            return {"test_accuracy": float(np.mean(np.argmax(logits, 1) == y_te))}

        t = Trainer(step, "ort", batch_size=batch or len(x_tr), seed=SEED, evaluate=evaluate,
                    verbose=False)
        hist = t.fit({"x": x_tr, "y": y_tr}, epochs)
        results[name] = hist[-1]
        print(f"[{name}] {epochs} epochs: loss {hist[0]['loss']:.4f} -> {hist[-1]['loss']:.4f}, "
              f"test accuracy {hist[-1]['test_accuracy']:.4f}", flush=True)
    for name, r in results.items():
        print(f"optimizer={name} engine=ort final_loss={r['loss']:.4f} "
              f"test_accuracy={r['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
