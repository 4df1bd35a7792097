"""Autoencoders on digits (the chapter's section 3.5): an undercomplete 64-16-64 network, then
L1-sparse and KL-sparse variants of it, each trained with Adam by the exported training step in
onnxruntime. Prints each variant's test reconstruction MSE beside PCA with 16 components (NumPy
SVD), and the KL variant's mean hidden activation beside its target rho.

    python examples/autoencoder_digits.py
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl import nn, optim
from graphdl.training.minibatch import params_as_inputs
from graphdl.training.trainer import Trainer

SEED, CODE, RHO = 0, 16, 0.05
VARIANTS = {"undercomplete": ("none", 0.0), "l1_sparse": ("l1", 1e-3), "kl_sparse": ("kl", 0.05)}


def load() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x_tr, x_te = train_test_split((x / 16).astype(np.float32), test_size=0.2,
                                  random_state=SEED, stratify=y)
    return x_tr, x_te


def pca_mse(x_tr: np.ndarray, x_te: np.ndarray, k: int = CODE) -> float:
    """Test MSE of projecting onto the top-k principal directions of the training set."""
    mu = x_tr.mean(0)
    _, _, vt = np.linalg.svd(x_tr - mu, full_matrices=False)
    v = vt[:k].T
    rec = (x_te - mu) @ v @ v.T + mu
    return float(np.mean((rec - x_te) ** 2))


def build(penalty: str, eta: float) -> tuple[gd.Graph, gd.Graph]:
    """The training graph (loss) and the inference graph (code h, reconstruction x_hat)."""
    ae = nn.Autoencoder(nn.Dense(64, CODE, "sigmoid", seed=SEED, name="enc"),
                        nn.Dense(CODE, 64, "sigmoid", seed=SEED + 1, name="dec"))
    b = gd.GraphBuilder(f"ae_{penalty}")
    loss, _, _ = ae.loss(b.input("x", ["N", 64]), penalty=penalty, eta=eta, rho=RHO)
    train = b.build({"loss": loss})
    b = gd.GraphBuilder("ae_infer")
    x = b.input("x", ["N", 64])
    h = ae.encoder(x)
    infer, _ = params_as_inputs(b.build({"h": h, "x_hat": ae.decoder(h)}))
    return train, infer


def run_variant(name: str, x_tr: np.ndarray, x_te: np.ndarray, epochs: int = 60) -> dict:
    penalty, eta = VARIANTS[name]
    train, infer = build(penalty, eta)
    step = passes.training_step(train, optim.Adam(lr=0.01))

    def evaluate(state):
        out = gd.run(infer, {"x": x_te, **step.params(state)}, backend="ort")
        return {"test_mse": float(np.mean((out["x_hat"] - x_te) ** 2)),
                "mean_h": float(out["h"].mean())}

    t = Trainer(step, "ort", batch_size=64, seed=SEED, evaluate=evaluate, verbose=False)
    hist = t.fit({"x": x_tr}, epochs)
    for row in hist[4::5]:
        print(f"[{name}] epoch {int(row['epoch'])}/{epochs} loss={row['loss']:.4f} "
              f"test_mse={row['test_mse']:.4f} mean_h={row['mean_h']:.3f}", flush=True)
    return hist[-1]


def main() -> None:
    x_tr, x_te = load()
    pca = pca_mse(x_tr, x_te)
    results = {name: run_variant(name, x_tr, x_te) for name in VARIANTS}
    for name, r in results.items():
        extra = f" mean_hidden={r['mean_h']:.4f} rho={RHO}" if name == "kl_sparse" else ""
        print(f"variant={name} engine=ort test_mse={r['test_mse']:.4f} "
              f"pca16_test_mse={pca:.4f}{extra}")


if __name__ == "__main__":
    main()
