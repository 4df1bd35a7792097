"""An MLP 64-256-128-10 (ReLU, softmax cross-entropy) trained by minibatch SGD on scikit-learn's
digits, once in graphdl's NumPy interpreter and once by running the exported gradient graph in
ONNX Runtime, from the same initial weights and the same batches.

    python examples/mlp_digits.py [--plot curves.png]

The chapter's section 3.2 network: h(k+1) = relu(W(k) h(k) + b(k)), softmax output, cross-entropy
over the labels, prediction = argmax. ``graphdl inspect examples/mlp_digits.py`` shows the model.
"""
from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl.nn import MLP
from graphdl.training.progress import plot_history
from graphdl.training.minibatch import (MinibatchSGD, classifier_graphs, fit_classifier,
                                        params_as_inputs)

SIZES = (64, 256, 128, 10)
SEED = 0


def load_data(seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Digits scaled to [0, 1], split 80/20 (stratified, fixed seed)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return tuple(train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=seed,
                                  stratify=y))


def build(net: MLP) -> tuple[gd.Graph, gd.Graph]:
    """The training graph (x, y -> loss) and the inference graph (x -> logits)."""
    return classifier_graphs(net, ["N", SIZES[0]], "mlp_digits")


def model() -> gd.Graph:
    """The inference graph, for ``graphdl inspect`` / ``graphdl export``."""
    return build(MLP(SIZES, "relu", seed=SEED))[1]


def loss_model() -> gd.Graph:
    """The training graph (x, y -> loss), for ``graphdl export`` then ``graphdl grad``."""
    return build(MLP(SIZES, "relu", seed=SEED))[0]


def train(engine: str, epochs: int = 20, batch_size: int = 32, lr: float = 0.1,
          seed: int = SEED, verbose: bool = True) -> dict:
    """Trains in ``engine`` ("numpy" or "ort"); returns accuracy, per-step losses and timing."""
    train_g, infer_g = build(MLP(SIZES, "relu", seed=seed))
    train_g, params = params_as_inputs(train_g)
    infer_g, _ = params_as_inputs(infer_g)
    sgd = MinibatchSGD(passes.grad(train_g, "loss", list(params)), params, lr, backend=engine)
    return fit_classifier(sgd, infer_g, load_data(seed), epochs, batch_size, seed,
                          verbose=verbose)


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the digits MLP in both engines.")
    parser.add_argument("--plot", metavar="OUT.png", help="draw loss and accuracy per epoch")
    args = parser.parse_args()
    results = [train(engine) for engine in ("numpy", "ort")]
    first, second = (abs(results[0]["losses"][k] - results[1]["losses"][k]) for k in (0, 1))
    if args.plot:
        plot_history({f"{r['engine']}_{k}": [h[k] for h in r["history"]]
                      for r in results for k in ("loss", "test_accuracy")}, args.plot,
                     title="MLP on digits")
    for r in results:
        print(f"engine={r['engine']} test_accuracy={r['test_accuracy']:.4f} "
              f"first_step_loss={r['first_step_loss']:.8f} final_loss={r['losses'][-1]:.4f} "
              f"train_seconds={r['seconds']:.1f} first_step_loss_diff={first:.1e} "
              f"second_step_loss_diff={second:.1e}")


if __name__ == "__main__":
    main()
