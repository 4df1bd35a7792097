"""A CNN (the chapter's section 3.3 framework) trained by minibatch SGD on scikit-learn's 8x8
digits, once in graphdl's NumPy interpreter and once by running the exported gradient graph in
ONNX Runtime, from the same initial weights and the same batches.

    python examples/cnn_digits.py

conv(1->16, 3x3, pad 1) - ReLU - maxpool 2 - conv(16->32, 3x3, pad 1) - ReLU - maxpool 2 -
flatten - dense 10, softmax cross-entropy over the labels, prediction = argmax.
``graphdl inspect examples/cnn_digits.py`` shows the model.
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl.nn import Conv2d, Dense, Flatten, MaxPool2d, Sequential
from graphdl.training.minibatch import (MinibatchSGD, classifier_graphs, fit_classifier,
                                        params_as_inputs)

SEED = 0
EPOCHS, BATCH, LR, MOMENTUM = 12, 32, 0.05, 0.9


def net(seed: int = SEED) -> Sequential:
    return Sequential(
        Conv2d(1, 16, 3, padding=1, activation="relu", seed=(seed, 1)), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1, activation="relu", seed=(seed, 2)), MaxPool2d(2),
        Flatten(), Dense(32 * 2 * 2, 10, seed=(seed, 3)))


def load_data(seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Digits as [N, 1, 8, 8] images scaled to [0, 1], split 80/20 (stratified, fixed seed)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    return tuple(train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=seed,
                                  stratify=y))


def build(model: Sequential) -> tuple[gd.Graph, gd.Graph]:
    """The training graph (x, y -> loss) and the inference graph (x -> logits)."""
    return classifier_graphs(model, ["N", 1, 8, 8], "cnn_digits")


def model() -> gd.Graph:
    """The inference graph, for ``graphdl inspect`` / ``graphdl export``."""
    return build(net())[1]


def loss_model() -> gd.Graph:
    """The training graph (x, y -> loss), for ``graphdl export`` then ``graphdl grad``."""
    return build(net())[0]


def train(engine: str, epochs: int = EPOCHS, seed: int = SEED, verbose: bool = True) -> dict:
    """Trains in ``engine`` ("numpy" or "ort"); returns accuracy, per-step losses and timing."""
    train_g, infer_g = build(net(seed))
    train_g, params = params_as_inputs(train_g)
    infer_g, _ = params_as_inputs(infer_g)
    sgd = MinibatchSGD(passes.grad(train_g, "loss", list(params)), params, LR,
                       backend=engine, momentum=MOMENTUM)
    return fit_classifier(sgd, infer_g, load_data(seed), epochs, BATCH, seed, verbose=verbose)


def main() -> None:
    results = [train(engine) for engine in ("numpy", "ort")]
    first = abs(results[0]["losses"][0] - results[1]["losses"][0])
    for r in results:
        print(f"engine={r['engine']} test_accuracy={r['test_accuracy']:.4f} "
              f"first_step_loss={r['first_step_loss']:.6f} final_loss={r['losses'][-1]:.4f} "
              f"train_seconds={r['seconds']:.1f} first_step_loss_diff={first:.1e}")


if __name__ == "__main__":
    main()
