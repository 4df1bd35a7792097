"""Minibatch gradient descent from a gradient graph: a short way into the one training API.

Parameters are initializers of the forward graph. Turn them into graph inputs, differentiate
once, and step on batches::

    g, params = params_as_inputs(forward)            # weights become inputs
    gg = passes.grad(g, "loss", list(params))        # outputs: loss, then NAME_grad
    sgd = MinibatchSGD(gg, params, lr=0.1, backend="ort")
    for idx in minibatches(len(x), 32, rng):
        sgd.step({"x": x[idx], "y": y[idx]})

graphdl does not import ``passes``, so the caller builds the gradient graph. MinibatchSGD is a
thin layer over the training API (graphdl.training.step and .trainer): it assembles the
gradient graph and ``optim.SGD`` into a :class:`TrainStep` and steps it with a
:class:`Trainer`, so the update rule, the engines' runners and the batching are the ones
``passes.training_step`` and ``graphdl train`` use. The update in the graph is the same float
operations as a NumPy ``W - lr * v`` beside the graph would be: the examples' per-step losses
equal such a loop's to the last bit in both engines (tests/test_nn.py checks it to 1e-6).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError
from ..core.ir import Graph
from ..engine.runtime import run
from ..ops.losses import softmax_cross_entropy
from ..optim.optimizers import SGD
from .step import TrainStep, assemble
from .train_data import batches
from .trainer import Trainer


def params_as_inputs(graph: Graph, names: Iterable[str] | None = None
                     ) -> tuple[Graph, dict[str, np.ndarray]]:
    """``graph`` with the named initializers (default: every floating-point one) moved to the
    end of its inputs, and their current values by name. The values are copies."""
    inits = graph.initializers
    if names is None:
        chosen = [v for v in inits if v.type.dtype.is_float]
    else:
        by_name = {v.name: v for v in inits}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise GraphError(f"not initializers of graph {graph.name!r}: {unknown}")
        chosen = [by_name[n] for n in names]
    kept = {v: a for v, a in inits.items() if v not in set(chosen)}
    g = graph.replace(inputs=tuple(graph.inputs) + tuple(chosen), initializers=kept)
    return g, {v.name: np.array(inits[v]) for v in chosen}


def minibatches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Shuffled index arrays covering range(n) once; the last batch may be smaller (the
    Trainer's batching, graphdl.training.train_data.batches)."""
    return batches(n, batch_size, rng)


class MinibatchSGD:
    """``W <- W - lr * dloss/dW`` with the gradients from a gradient graph (with ``momentum``
    > 0, heavy-ball momentum as torch.optim.SGD: ``v <- momentum * v + grad``,
    ``W <- W - lr * v``): ``optim.SGD`` in a :class:`TrainStep` run by a :class:`Trainer`.

    ``grad_graph`` takes the batch and the parameters as inputs and outputs ``loss`` and one
    ``NAME_grad`` per parameter (what ``passes.grad`` builds from :func:`params_as_inputs`).
    ``train_step`` and ``trainer`` are the step and the trainer it made, for everything else
    the training API offers (``trainer.fit``, checkpoints, ``train_step.save`` for ONNX).
    ``ort_options`` (backend "ort") are the Trainer's: onnxruntime's threads and spinning.
    """

    def __init__(self, grad_graph: Graph, params: Mapping[str, np.ndarray], lr: float,
                 loss: str = "loss", backend: str = "numpy", provider: str = "cpu",
                 momentum: float = 0.0, ort_options: Any = None):
        outs = {v.name for v in grad_graph.outputs}
        missing = [n for n in [loss, *(f"{p}_grad" for p in params)] if n not in outs]
        if missing:
            raise GraphError(f"gradient graph {grad_graph.name!r} lacks outputs {missing}")
        self.graph, self.lr, self.loss, self.momentum = grad_graph, lr, loss, momentum
        self.backend, self.provider = backend, provider
        self.train_step: TrainStep = assemble(grad_graph, SGD(lr, momentum), params, {}, loss)
        self.trainer = Trainer(self.train_step, backend, provider, verbose=False,
                               ort_options=ort_options)

    @property
    def params(self) -> dict[str, np.ndarray]:
        """The current parameters by name."""
        return self.train_step.params(self.trainer.state)

    def step(self, batch: Mapping[str, np.ndarray]) -> float:
        """One update on ``batch`` (feeds by input name); returns the loss before the update."""
        return self.trainer.train_batch(batch)[self.loss]


# -- classifiers on (x, y) data: what the examples share ---------------------------------------


def classifier_graphs(model: Callable[[Tensor], Tensor], x_shape: Sequence[Any],
                      name: str) -> tuple[Graph, Graph]:
    """The training graph (x, int64 labels y -> softmax cross-entropy ``loss``) and the
    inference graph (x -> ``logits``) of ``model``, sharing its parameters."""
    b = GraphBuilder(f"{name}_train")
    x, y = b.input("x", x_shape), b.input("y", [x_shape[0]], "int64")
    train = b.build({"loss": softmax_cross_entropy(model(x), y)})
    b = GraphBuilder(name)
    infer = b.build({"logits": model(b.input("x", x_shape))})
    return train, infer


def accuracy(infer: Graph, params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
             engine: str = "numpy") -> float:
    """The share of argmax(logits) equal to the labels."""
    logits = run(infer, {"x": x, **params}, backend=engine)["logits"]
    return float(np.mean(np.argmax(logits, axis=1) == y))


def fit_classifier(sgd: MinibatchSGD, infer: Graph, data: Sequence[np.ndarray], epochs: int,
                   batch_size: int, seed: int = 0, label: str = "",
                   verbose: bool = True) -> dict[str, Any]:
    """Trains with ``sgd`` on ``data`` = (x_train, x_test, y_train, y_test) for ``epochs`` of
    its trainer's :meth:`~Trainer.fit`, printing the mean batch loss and the test accuracy per
    epoch; returns the accuracy, every step's loss, the per-epoch ``history`` and the time.
    It sets ``sgd.trainer``'s batch size and random generator (batches of ``batch_size``
    shuffled from ``seed`` only, so two engines see the same)."""
    x_tr, x_te, y_tr, y_te = data
    trainer, losses, history = sgd.trainer, [], []
    trainer.batch_size, trainer.rng = batch_size, np.random.default_rng(seed)
    hooks = trainer.on_step, trainer.evaluate
    trainer.on_step = lambda out: losses.append(out[sgd.loss])
    trainer.evaluate = lambda state: {"test_accuracy": accuracy(
        infer, sgd.train_step.params(state), x_te, y_te, sgd.backend)}
    start = time.perf_counter()
    try:
        for epoch in range(1, epochs + 1):
            first = len(losses)
            row = trainer.fit({"x": x_tr, "y": y_tr}, trainer.epoch + 1)[-1]
            history.append({"loss": float(np.mean(losses[first:])),
                            "test_accuracy": row["test_accuracy"]})
            if verbose:
                print(f"[{label or sgd.backend}] epoch {epoch:2d}/{epochs} "
                      f"loss={history[-1]['loss']:.4f} "
                      f"test_accuracy={history[-1]['test_accuracy']:.4f}", flush=True)
    finally:
        trainer.on_step, trainer.evaluate = hooks
    return {"engine": sgd.backend, "losses": losses, "first_step_loss": losses[0],
            "test_accuracy": history[-1]["test_accuracy"], "history": history,
            "seconds": time.perf_counter() - start}
