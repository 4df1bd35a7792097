"""A small vision transformer (ViT) on scikit-learn's 8x8 digits: each image is cut into 16
patches of 2x2 pixels (in the graph: reshape and transpose), each patch embedded linearly to
32 dims with a learned position embedding, two pre-norm encoder layers (4 heads, GELU
feed-forward of 64), a final LayerNorm, the mean over the patches, and a dense layer to the
logits; softmax cross-entropy; minibatch SGD with momentum. Trained once in graphdl's NumPy
interpreter and once by running the exported gradient graph in ONNX Runtime, from the same
initial weights and the same batches.

    python examples/transformer_digits.py

``graphdl inspect examples/transformer_digits.py`` shows the inference graph (``attention``,
``layer_norm`` and ``gelu`` nodes); ``graphdl export`` writes them as ONNX Attention,
LayerNormalization and Gelu.
"""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphdl as gd
import passes
from graphdl.nn import Dense, LayerNorm, PositionEmbedding, TransformerEncoderLayer
from graphdl.training.minibatch import MinibatchSGD, classifier_graphs, fit_classifier, params_as_inputs

SEED = 0
PATCH, PATCHES, DIM, HEADS, FF, LAYERS, CLASSES = 2, 16, 32, 4, 64, 2, 10
EPOCHS, BATCH, LR, MOMENTUM = 20, 32, 0.005, 0.9


class ViT:
    """patches -> Dense -> + positions -> encoder layers -> LayerNorm -> mean -> Dense."""

    def __init__(self, seed: int = SEED):
        self.embed = Dense(PATCH * PATCH, DIM, init="glorot", seed=(seed, 0), name="embed")
        self.pos = PositionEmbedding(PATCHES, DIM, seed=(seed, 1), name="pos")
        self.blocks = [TransformerEncoderLayer(DIM, HEADS, FF, norm_first=True,
                                               name=f"block{i}", seed=seed + 10 * i)
                       for i in range(LAYERS)]
        self.norm = LayerNorm(DIM, name="norm")
        self.head = Dense(DIM, CLASSES, init="glorot", seed=(seed, 2), name="head")

    def __call__(self, x: gd.Tensor) -> gd.Tensor:
        h = self.pos(self.embed(patches(x)))
        for block in self.blocks:
            h = block(h)
        return self.head(gd.reduce_mean(self.norm(h), [1]))


def patches(x: gd.Tensor) -> gd.Tensor:
    """[N, 8, 8] images -> [N, 16, 4]: 2x2 patches in row-major order, pixels row-major."""
    side = 8 // PATCH
    h = gd.reshape(x, [-1, side, PATCH, side, PATCH])
    h = gd.transpose(h, [0, 1, 3, 2, 4])
    return gd.reshape(h, [-1, PATCHES, PATCH * PATCH])


def load_data(seed: int = SEED) -> tuple[np.ndarray, ...]:
    """Digits as [N, 8, 8] scaled to [0, 1], split 80/20 (stratified)."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 8, 8)
    return tuple(train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=seed,
                                  stratify=y))


def build(seed: int = SEED) -> tuple[gd.Graph, gd.Graph]:
    """The training graph (x, y -> loss) and the inference graph (x -> logits)."""
    return classifier_graphs(ViT(seed), ["N", 8, 8], "transformer_digits")


def model() -> gd.Graph:
    """The inference graph, for ``graphdl inspect`` / ``graphdl export``."""
    return build()[1]


def train(engine: str, epochs: int = EPOCHS, seed: int = SEED, verbose: bool = True) -> dict:
    """Trains in ``engine`` ("numpy" or "ort"); returns accuracy, losses, timing."""
    train_g, infer_g = build(seed)
    train_g, params = params_as_inputs(train_g)
    infer_g, _ = params_as_inputs(infer_g)
    sgd = MinibatchSGD(passes.grad(train_g, "loss", list(params)), params, LR,
                       backend=engine, momentum=MOMENTUM)
    return fit_classifier(sgd, infer_g, load_data(seed), epochs, BATCH, seed,
                          label=f"vit {engine}", verbose=verbose)


def main() -> None:
    results = [train(engine) for engine in ("numpy", "ort")]
    for r in results:
        print(f"engine={r['engine']} test_accuracy={r['test_accuracy']:.4f} "
              f"final_loss={r['losses'][-1]:.4f} train_seconds={r['seconds']:.1f}")


if __name__ == "__main__":
    main()
