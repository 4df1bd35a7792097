"""Making an inference model trainable: attach a loss, choose what trains, freeze the rest.

``passes.training_step`` calls these on the forward graph before differentiating it:

- :func:`attach_loss` gives an inference model a scalar loss on one of its outputs (and, for
  cross-entropy, an ``accuracy`` metric), with a new labels input;
- :func:`select_params` turns ``trainable``/``freeze`` globs into parameter names (default:
  the true parameters of graphdl.training.param_roles);
- :func:`freeze_batch_norms` runs a training-mode batch norm whose scale and shift are both
  frozen in inference mode, so a frozen backbone's running statistics stay as they were;
- :func:`seed_dropouts` replaces a keep-mask drawn inside the graph (an imported train-mode
  Dropout, or graphdl's own export of one) by a mask input, which the trainer draws from its
  own seed, so training an imported model is reproducible and resumes exactly.
"""
from __future__ import annotations

import fnmatch
from typing import Sequence

import numpy as np

from .. import ops
from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError
from ..core.ir import Graph, Node, Value
from ..core.rewrite import rebuild
from .param_roles import true_parameters

LOSSES = ("cross_entropy", "mse", "bce_logits")
MASK_SUFFIX = ".mask"


def attach_loss(graph: Graph, kind: str, logits: str, labels: str = "labels",
                loss: str = "loss") -> Graph:
    """``graph`` with outputs ``loss`` (``kind`` of output ``logits`` against a new input
    ``labels``: int64 class indices [N] for cross_entropy, else shaped like the logits) and,
    for cross_entropy, ``accuracy`` (argmax hits; a tie counts as a hit)."""
    if kind not in LOSSES:
        raise GraphError(f"unknown loss {kind!r}; attach one of {list(LOSSES)}")
    outs = {v.name: v for v in graph.outputs}
    if logits not in outs:
        raise GraphError(f"--logits {logits!r} is not an output of {graph.name!r}; its outputs "
                         f"are {list(outs)}")
    if labels in {v.name for v in graph.all_values()}:
        raise GraphError(f"the labels input {labels!r} is already a value of {graph.name!r}; "
                         "pick another name with --labels")
    b = GraphBuilder.from_graph(graph)
    z = b.tensor(outs[logits])
    if not z.dtype.is_float:
        raise GraphError(f"output {logits!r} is {z.type}, not floating point")
    if kind == "cross_entropy":
        if z.type.rank != 2:
            raise GraphError(f"cross_entropy needs logits [N, classes]; {logits!r} is {z.type}")
        y = b.input(labels, [z.shape[0]], "int64")
        return b.build({loss: ops.softmax_cross_entropy(z, y), "accuracy": _accuracy(z, y)})
    y = b.input(labels, z.shape, z.dtype)
    fn = ops.mse_loss if kind == "mse" else ops.binary_cross_entropy_with_logits
    return b.build({loss: fn(z, y)})


def _accuracy(z: Tensor, y: Tensor) -> Tensor:
    hit = ops.gather_elements(z, ops.unsqueeze(y, [1]), axis=1).eq(
        ops.reduce_max(z, 1, keepdims=True))
    return ops.reduce_mean(ops.cast(hit, z.dtype))


def select_params(graph: Graph, trainable: Sequence[str] | None = None,
                  freeze: Sequence[str] = ()) -> list[str]:
    """The parameters to train: the true parameters matching any ``trainable`` glob (all of
    them when None; an exact name may also pick another float initializer), less those
    matching a ``freeze`` glob. A glob that matches nothing is an error naming it."""
    true = true_parameters(graph)
    floats = [v.name for v in graph.initializers if v.type.dtype.is_float]
    names = list(true)
    if trainable is not None:
        names = [n for n in true if any(fnmatch.fnmatchcase(n, p) for p in trainable)]
        names += [n for n in floats if n in trainable and n not in names]
        _check_globs("--trainable", trainable, true + floats)
    _check_globs("--freeze", freeze, floats)
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in freeze)]
    if not names:
        raise GraphError(f"no parameter left to train; the true parameters are {true}")
    return names


def _check_globs(option: str, globs: Sequence[str], names: Sequence[str]) -> None:
    for p in globs:
        if not any(fnmatch.fnmatchcase(n, p) for n in names):
            raise GraphError(f"{option} {p!r} matches no parameter; the parameters are "
                             f"{sorted(set(names))}")


def freeze_batch_norms(graph: Graph, params: Sequence[str]) -> Graph:
    """Every ``batch_norm_train`` whose scale and shift are not trained becomes an inference
    ``batch_norm`` on its running statistics, which pass through unchanged."""
    trained = set(params)

    def replace(b: GraphBuilder, node: Node, ins: list) -> list[Tensor] | None:
        if node.op != "batch_norm_train" or _trained(node, trained):
            return None
        x, gamma, beta, mean, var = ins
        y = ops.batch_norm(x, gamma, beta, mean, var, eps=node.attrs["eps"])
        return [y, ops.identity(mean), ops.identity(var)]

    return rebuild(graph, replace)[0]


def _trained(node: Node, trained: set[str]) -> bool:
    return any(v is not None and v.name in trained for v in node.inputs[1:3])


def seed_dropouts(graph: Graph) -> tuple[Graph, dict[str, float]]:
    """Each keep-mask drawn in the graph (``cast(random_uniform_like(x) >= rate)``, what
    ``random_keep_mask`` builds, an imported train-mode Dropout or graphdl's own export of one)
    becomes a new input ``VALUE.mask`` shaped like x, for the trainer to draw from its seed.
    Returns the graph and each new mask input's rate."""
    producer = {o: n for n in graph.nodes for o in n.outputs}
    taken = {v.name for v in graph.all_values()}
    rates: dict[str, float] = {}

    def replace(b: GraphBuilder, node: Node, ins: list) -> list[Tensor] | None:
        rate = _keep_mask_rate(node, producer, graph)
        if rate is None:
            return None
        out, name = node.outputs[0], node.outputs[0].name + MASK_SUFFIX
        mask = b.input(b.fresh(name + "_") if name in taken else name, out.type.shape,
                       out.type.dtype)
        rates[mask.name] = rate
        return [mask]

    return rebuild(graph, replace)[0], rates


def _keep_mask_rate(node: Node, producer: dict, graph: Graph) -> float | None:
    """The rate when ``node`` is the cast ending a drawn keep-mask, else None."""
    if node.op != "cast" or not node.outputs[0].type.dtype.is_float:
        return None
    ge = producer.get(node.inputs[0])
    if ge is None or ge.op != "greater_or_equal":
        return None
    draw = producer.get(ge.inputs[0])
    if draw is None or draw.op != "random_uniform_like":
        return None
    rate = _static(ge.inputs[1], producer, graph)
    return None if rate is None or rate.size != 1 else float(rate.reshape(()))


def _static(v: Value | None, producer: dict, graph: Graph) -> np.ndarray | None:
    if v in graph.initializers:
        return np.asarray(graph.initializers[v])
    node = producer.get(v)
    return np.asarray(node.attrs["value"]) if node is not None and node.op == "constant" \
        else None


def count(values: dict[str, np.ndarray], names: Sequence[str]) -> int:
    """The number of elements in ``names``' arrays."""
    return int(sum(np.asarray(values[n]).size for n in names))
