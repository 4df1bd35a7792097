"""Diabetes regression: MLP 10-8-1 (tanh) with a linear output, squared loss and an L2 weight
penalty, trained with Adam by the exported training step in both engines; test R^2 beside
ordinary least squares.

    python examples/diabetes_regression.py
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl import nn, optim
from graphdl.nn import MLP
from graphdl.training.minibatch import params_as_inputs
from graphdl.training.trainer import Trainer

SEED = 0


def load() -> tuple[np.ndarray, ...]:
    """Standardised features and target (train statistics); the target as [N, 1]."""
    x, y = load_diabetes(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=SEED)
    mu, sd, ym, ys = x_tr.mean(0), x_tr.std(0), y_tr.mean(), y_tr.std()
    f = np.float32
    return ((x_tr - mu) / sd).astype(f), ((x_te - mu) / sd).astype(f), \
        ((y_tr - ym) / ys)[:, None].astype(f), ((y_te - ym) / ys)[:, None].astype(f)


def r2(pred: np.ndarray, y: np.ndarray) -> float:
    return float(1 - np.sum((pred - y) ** 2) / np.sum((y - y.mean()) ** 2))


def ols_r2(x_tr, y_tr, x_te, y_te) -> float:
    a = np.hstack([x_tr, np.ones((len(x_tr), 1))])
    coef, *_ = np.linalg.lstsq(a, y_tr, rcond=None)
    return r2(np.hstack([x_te, np.ones((len(x_te), 1))]) @ coef, y_te)


def build() -> tuple[gd.Graph, gd.Graph]:
    net = MLP((10, 8, 1), "tanh", seed=SEED)
    b = gd.GraphBuilder("diabetes_train")
    x, t = b.input("x", ["N", 10]), b.input("t", ["N", 1])
    loss = gd.mse_loss(net(x), t) + nn.l2_penalty(nn.weights_of(net.parameters(b)), 1e-2)
    train = b.build({"loss": loss})
    b = gd.GraphBuilder("diabetes")
    infer, _ = params_as_inputs(b.build({"y": net(b.input("x", ["N", 10]))}))
    return train, infer


def main() -> None:
    x_tr, x_te, y_tr, y_te = load()
    train_g, infer = build()
    step = passes.training_step(train_g, optim.Adam(lr=0.01))
    results = []
    for engine in ("numpy", "ort"):
        def evaluate(state, engine=engine):
            pred = gd.run(infer, {"x": x_te, **step.params(state)}, backend=engine)["y"]
            return {"test_r2": r2(pred, y_te)}

        t = Trainer(step, engine, batch_size=32, seed=SEED, evaluate=evaluate)
        results.append((engine, t.fit({"x": x_tr, "t": y_tr}, 20)[-1]))
    ols = ols_r2(x_tr, y_tr, x_te, y_te)
    for engine, last in results:
        print(f"engine={engine} test_r2={last['test_r2']:.4f} ols_test_r2={ols:.4f} "
              f"final_loss={last['loss']:.4f}")


if __name__ == "__main__":
    main()
