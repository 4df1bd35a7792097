"""Minibatch gradient descent driven by a gradient graph, in either engine.

Parameters are initializers of the forward graph. To train without rebuilding a graph (or an
ONNX Runtime session) each step, turn them into graph inputs, differentiate once, then feed the
current weights with every batch::

    g, params = params_as_inputs(forward)            # weights become inputs
    gg = passes.grad(g, "loss", list(params))        # outputs: loss, then NAME_grad
    sgd = MinibatchSGD(gg, params, lr=0.1, backend="ort")
    for idx in minibatches(len(x), 32, rng):
        sgd.step({"x": x[idx], "y": y[idx]})

graphdl does not import ``passes``, so the caller builds the gradient graph. The update itself is
NumPy here; graphdl.optim builds whole update steps as graphs.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..core.errors import GraphError
from ..core.builder import Tensor
from ..core.ir import Graph


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
    """Shuffled index arrays covering range(n) once; the last batch may be smaller."""
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


class MinibatchSGD:
    """``W <- W - lr * dloss/dW`` with the gradients from running a gradient graph (with
    ``momentum`` > 0, heavy-ball momentum as torch.optim.SGD: ``v <- momentum * v + grad``,
    ``W <- W - lr * v``).

    ``grad_graph`` takes the batch and the parameters as inputs and outputs ``loss`` and one
    ``NAME_grad`` per parameter (what ``passes.grad`` builds from :func:`params_as_inputs`).
    """

    def __init__(self, grad_graph: Graph, params: Mapping[str, np.ndarray], lr: float,
                 loss: str = "loss", backend: str = "numpy", provider: str = "cpu",
                 momentum: float = 0.0):
        outs = {v.name for v in grad_graph.outputs}
        missing = [n for n in [loss, *(f"{p}_grad" for p in params)] if n not in outs]
        if missing:
            raise GraphError(f"gradient graph {grad_graph.name!r} lacks outputs {missing}")
        self.graph, self.lr, self.loss = grad_graph, lr, loss
        self.backend, self.provider = backend, provider
        self.params = {n: np.array(a) for n, a in params.items()}
        self.momentum = momentum  # heavy ball: v <- momentum * v + grad; W <- W - lr * v
        self.velocity = {n: np.zeros_like(a) for n, a in self.params.items()}

    def step(self, batch: Mapping[str, np.ndarray]) -> float:
        """One update on ``batch`` (feeds by input name); returns the loss before the update."""
        from ..engine.runtime import run

        out = run(self.graph, {**batch, **self.params}, self.backend, self.provider)
        for name, w in self.params.items():
            step = out[f"{name}_grad"]
            if self.momentum:
                step = self.velocity[name] = \
                    np.asarray(self.momentum, w.dtype) * self.velocity[name] + step
            self.params[name] = w - np.asarray(self.lr, w.dtype) * step
        return float(out[self.loss])


# -- classifiers on (x, y) data: what the examples share ---------------------------------------


def classifier_graphs(model: Callable[[Tensor], Tensor], x_shape: Sequence[Any],
                      name: str) -> tuple[Graph, Graph]:
    """The training graph (x, int64 labels y -> softmax cross-entropy ``loss``) and the
    inference graph (x -> ``logits``) of ``model``, sharing its parameters."""
    from .. import ops
    from ..core.builder import GraphBuilder

    b = GraphBuilder(f"{name}_train")
    x, y = b.input("x", x_shape), b.input("y", [x_shape[0]], "int64")
    train = b.build({"loss": ops.softmax_cross_entropy(model(x), y)})
    b = GraphBuilder(name)
    infer = b.build({"logits": model(b.input("x", x_shape))})
    return train, infer


def accuracy(infer: Graph, params: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray,
             engine: str = "numpy") -> float:
    """The share of argmax(logits) equal to the labels."""
    from ..engine.runtime import run

    logits = run(infer, {"x": x, **params}, backend=engine)["logits"]
    return float(np.mean(np.argmax(logits, axis=1) == y))


def fit_classifier(sgd: MinibatchSGD, infer: Graph, data: Sequence[np.ndarray], epochs: int,
                   batch_size: int, seed: int = 0, label: str = "",
                   verbose: bool = True) -> dict[str, Any]:
    """Trains with ``sgd`` on ``data`` = (x_train, x_test, y_train, y_test) for ``epochs``,
    with a progress bar on a terminal and the loss and test accuracy per epoch; returns the
    accuracy, every step's loss, the per-epoch ``history`` and the training time. The batches
    depend on ``seed`` only, so two engines see the same."""
    from .progress import Progress

    x_tr, x_te, y_tr, y_te = data
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        tag = f"[{label or sgd.backend}] epoch {epoch:2d}/{epochs}"
        bar = Progress(list(minibatches(len(x_tr), batch_size, rng)), desc=tag)
        epoch_losses = []
        for i in bar:  # the bar draws only on a terminal
            epoch_losses.append(sgd.step({"x": x_tr[i], "y": y_tr[i]}))
            bar.set(loss=epoch_losses[-1])
        losses.extend(epoch_losses)
        history.append({"loss": float(np.mean(epoch_losses)),
                        "test_accuracy": accuracy(infer, sgd.params, x_te, y_te, sgd.backend)})
        if verbose:
            print(f"{tag} loss={history[-1]['loss']:.4f} "
                  f"test_accuracy={history[-1]['test_accuracy']:.4f}", flush=True)
    return {"engine": sgd.backend, "losses": losses, "first_step_loss": losses[0],
            "test_accuracy": history[-1]["test_accuracy"], "history": history,
            "seconds": time.perf_counter() - start}
