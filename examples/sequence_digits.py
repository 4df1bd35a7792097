"""Recurrent classifiers (the chapter's section 3.4) on scikit-learn's 8x8 digits read as
sequences: each image is 8 time steps of one 8-pixel row. An LSTM (hidden 64) and a GRU
(hidden 64, the chapter's form) read the rows; a dense layer on the last hidden state gives the
logits; softmax cross-entropy; minibatch SGD with momentum. Each model is trained once in
graphdl's NumPy interpreter and once by running the exported gradient graph (backprop through
time, unrolled) in ONNX Runtime, from the same initial weights and the same batches.

    python examples/sequence_digits.py

``graphdl inspect examples/sequence_digits.py`` shows the LSTM model (one ``lstm`` node);
``graphdl export`` writes it as a single ONNX LSTM.
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl.nn import GRU, LSTM, Dense, Sequential
from graphdl.training.minibatch import (MinibatchSGD, classifier_graphs, fit_classifier,
                                        params_as_inputs)

SEED = 0
STEPS, PIXELS, HIDDEN, CLASSES = 8, 8, 64, 10
EPOCHS, BATCH, LR, MOMENTUM = 15, 32, 0.1, 0.9
MODELS = {"lstm": LSTM, "gru": GRU}


def net(kind: str = "lstm", seed: int = SEED) -> Sequential:
    return Sequential(MODELS[kind](PIXELS, HIDDEN, seed=(seed, 1)),
                      Dense(HIDDEN, CLASSES, seed=(seed, 2)))


def load_data(seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Digits as [N, 8 rows, 8 pixels] scaled to [0, 1], split 80/20 (stratified)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, STEPS, PIXELS)
    return tuple(train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=seed,
                                  stratify=y))


def build(model: Sequential) -> tuple[gd.Graph, gd.Graph]:
    """The training graph (x, y -> loss) and the inference graph (x -> logits)."""
    return classifier_graphs(model, ["N", STEPS, PIXELS], "sequence_digits")


def model() -> gd.Graph:
    """The LSTM inference graph, for ``graphdl inspect`` / ``graphdl export``."""
    return build(net("lstm"))[1]


def loss_model() -> gd.Graph:
    """The LSTM training graph (x, y -> loss), for ``graphdl export`` then ``graphdl grad``."""
    return build(net("lstm"))[0]


def train(kind: str, engine: str, epochs: int = EPOCHS, seed: int = SEED,
          verbose: bool = True) -> dict:
    """Trains ``kind`` in ``engine`` ("numpy" or "ort"); returns accuracy, losses, timing."""
    train_g, infer_g = build(net(kind, seed))
    train_g, params = params_as_inputs(train_g)
    infer_g, _ = params_as_inputs(infer_g)
    sgd = MinibatchSGD(passes.grad(train_g, "loss", list(params)), params, LR,
                       backend=engine, momentum=MOMENTUM)
    result = fit_classifier(sgd, infer_g, load_data(seed), epochs, BATCH, seed,
                            label=f"{kind} {engine}", verbose=verbose)
    return {"model": kind, **result}


def main() -> None:
    results = [train(kind, engine) for kind in MODELS for engine in ("numpy", "ort")]
    for r in results:
        twin = next(o for o in results if o["model"] == r["model"] and o is not r)
        diff = abs(r["first_step_loss"] - twin["first_step_loss"])
        print(f"model={r['model']} engine={r['engine']} test_accuracy={r['test_accuracy']:.4f} "
              f"first_step_loss={r['first_step_loss']:.6f} final_loss={r['losses'][-1]:.4f} "
              f"train_seconds={r['seconds']:.1f} first_step_loss_diff={diff:.1e}")


if __name__ == "__main__":
    main()
