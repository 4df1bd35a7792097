"""Breast-cancer classification: MLP 30-16-1 with a sigmoid output and binary cross-entropy,
trained with Adam by the exported training step in the interpreter and in onnxruntime, from
the same start and the same batches.

    python examples/breast_cancer.py
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP
from graphdl.training.minibatch import params_as_inputs
from graphdl.training.trainer import Trainer

SEED = 0


def load() -> tuple[np.ndarray, ...]:
    """Standardised features (train statistics), labels as float [N, 1]."""
    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED,
                                              stratify=y)
    mu, sd = x_tr.mean(0), x_tr.std(0)
    f = np.float32
    return ((x_tr - mu) / sd).astype(f), ((x_te - mu) / sd).astype(f), \
        y_tr[:, None].astype(f), y_te[:, None].astype(f)


def build() -> tuple[gd.Graph, gd.Graph]:
    """Training: the cross-entropy of sigmoid(z) computed from the logit z (finite even when
    the sigmoid saturates); inference: the sigmoid output p."""
    net = MLP((30, 16, 1), "relu", seed=SEED)
    b = gd.GraphBuilder("cancer_train")
    x, t = b.input("x", ["N", 30]), b.input("t", ["N", 1])
    train = b.build({"loss": gd.binary_cross_entropy_with_logits(net(x), t)})
    b = gd.GraphBuilder("cancer")
    infer, _ = params_as_inputs(b.build({"p": gd.sigmoid(net(b.input("x", ["N", 30])))}))
    return train, infer


def main() -> None:
    x_tr, x_te, y_tr, y_te = load()
    train_g, infer = build()
    step = passes.training_step(train_g, optim.Adam(lr=0.003))
    results = []
    for engine in ("numpy", "ort"):
        def evaluate(state, engine=engine):
            p = gd.run(infer, {"x": x_te, **step.params(state)}, backend=engine)["p"]
            return {"test_accuracy": float(np.mean((p > 0.5) == (y_te > 0.5)))}

        t = Trainer(step, engine, batch_size=32, seed=SEED, evaluate=evaluate)
        hist = t.fit({"x": x_tr, "t": y_tr}, 15)
        results.append((engine, hist[-1]))
    for engine, last in results:
        print(f"engine={engine} test_accuracy={last['test_accuracy']:.4f} "
              f"final_loss={last['loss']:.4f}")


if __name__ == "__main__":
    main()
