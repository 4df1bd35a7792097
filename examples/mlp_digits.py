"""An MLP 64-256-128-10 (ReLU, softmax cross-entropy) trained by minibatch SGD on scikit-learn's
digits, once in graphdl's NumPy interpreter and once by running the exported gradient graph in
ONNX Runtime, from the same initial weights and the same batches.

    python examples/mlp_digits.py

The chapter's section 3.2 network: h(k+1) = relu(W(k) h(k) + b(k)), softmax output, cross-entropy
over the labels, prediction = argmax. ``graphdl inspect examples/mlp_digits.py`` shows the model.
"""
from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl.nn import MLP
from graphdl.train import MinibatchSGD, minibatches, params_as_inputs

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
    b = gd.GraphBuilder("mlp_digits_train")
    x, y = b.input("x", ["N", SIZES[0]]), b.input("y", ["N"], "int64")
    train = b.build({"loss": gd.softmax_cross_entropy(net(x), y)})
    b = gd.GraphBuilder("mlp_digits")
    infer = b.build({"logits": net(b.input("x", ["N", SIZES[0]]))})
    return train, infer


def model() -> gd.Graph:
    """The inference graph, for ``graphdl inspect`` / ``graphdl export``."""
    return build(MLP(SIZES, "relu", seed=SEED))[1]


def loss_model() -> gd.Graph:
    """The training graph (x, y -> loss), for ``graphdl export`` then ``graphdl grad``."""
    return build(MLP(SIZES, "relu", seed=SEED))[0]


def accuracy(infer: gd.Graph, params: dict, x: np.ndarray, y: np.ndarray, engine: str) -> float:
    logits = gd.run(infer, {"x": x, **params}, backend=engine)["logits"]
    return float(np.mean(np.argmax(logits, axis=1) == y))


def train(engine: str, epochs: int = 20, batch_size: int = 32, lr: float = 0.1,
          seed: int = SEED, verbose: bool = True) -> dict:
    """Trains in ``engine`` ("numpy" or "ort"); returns accuracy, per-step losses and timing."""
    x_tr, x_te, y_tr, y_te = load_data(seed)
    train_g, infer_g = build(MLP(SIZES, "relu", seed=seed))
    train_g, params = params_as_inputs(train_g)
    infer_g, _ = params_as_inputs(infer_g)
    sgd = MinibatchSGD(passes.grad(train_g, "loss", list(params)), params, lr, backend=engine)
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        epoch_losses = [sgd.step({"x": x_tr[i], "y": y_tr[i]})
                        for i in minibatches(len(x_tr), batch_size, rng)]
        losses.extend(epoch_losses)
        if verbose:
            acc = accuracy(infer_g, sgd.params, x_te, y_te, engine)
            print(f"[{engine}] epoch {epoch:2d}/{epochs} loss={np.mean(epoch_losses):.4f} "
                  f"test_accuracy={acc:.4f}", flush=True)
    return {"engine": engine, "test_accuracy": accuracy(infer_g, sgd.params, x_te, y_te, engine),
            "first_step_loss": losses[0], "losses": losses,
            "seconds": time.perf_counter() - start}


def main() -> None:
    results = [train(engine) for engine in ("numpy", "ort")]
    first, second = (abs(results[0]["losses"][k] - results[1]["losses"][k]) for k in (0, 1))
    for r in results:
        print(f"engine={r['engine']} test_accuracy={r['test_accuracy']:.4f} "
              f"first_step_loss={r['first_step_loss']:.8f} final_loss={r['losses'][-1]:.4f} "
              f"train_seconds={r['seconds']:.1f} first_step_loss_diff={first:.1e} "
              f"second_step_loss_diff={second:.1e}")


if __name__ == "__main__":
    main()
