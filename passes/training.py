"""The training-step pass: (forward graph with a loss, optimiser) -> one training-step graph.

Differentiates the loss w.r.t. the parameters, then appends the optimiser's update subgraph
(graphdl.training.step describes the result). Nodes that carry state or randomness are found in
the forward graph itself, by their ops' facts:

- ``OpDef.carries`` (batch_norm_train): where such a state input is an initializer (running
  mean/variance), it becomes a carried input, not trained, and the node's output holding its
  next value becomes a ``NAME.next`` output;
- ``OpDef.mask`` (dropout): where the mask is a graph input, the manifest lists that input as a
  mask with the node's rate, for a trainer to draw each step (or a test to feed).

Before that, graphdl.training.finetune prepares an imported model: an attached loss, drawn
keep-masks turned into mask inputs, the parameters chosen (true parameters, globs, or LoRA
adapters from graphdl.training.lora) and batch norms with frozen scale and shift put in
inference mode.
"""
from __future__ import annotations

from typing import Sequence

from graphdl.core.builder import GraphBuilder
from graphdl.core.errors import GraphError
from graphdl.core.ir import Graph, Value
from graphdl.core.registry import get_op
from graphdl.optim import Optimizer
from graphdl.optim import UpdateOptions
from graphdl.training.finetune import (attach_loss, freeze_batch_norms, seed_dropouts,
                                       select_params)
from graphdl.training.lora import LoraSpec, add_adapters
from graphdl.training.minibatch import params_as_inputs
from graphdl.training.step import NEXT, TrainStep, assemble

from .autodiff import grad
from .cse import eliminate_common_subexpressions
from .dce import eliminate_dead_nodes

def training_step(forward: Graph, optimizer: Optimizer, loss: str = "loss",
                  params: Sequence[str] | None = None, metrics: Sequence[str] = (), *,
                  attach: str | None = None, logits: str | None = None, labels: str = "labels",
                  trainable: Sequence[str] | None = None, freeze: Sequence[str] = (),
                  lora: LoraSpec | None = None, options: UpdateOptions | None = None
                  ) -> TrainStep:
    """The training step of ``forward``'s scalar output ``loss``, updating ``params`` (default:
    the true parameters matching ``trainable`` globs, less ``freeze`` globs; see
    graphdl.training.finetune) with ``optimizer``; ``metrics`` names other forward values to
    output each step. ``attach`` (cross_entropy, mse, bce_logits) first gives an inference
    model the loss on its output ``logits`` against a new input ``labels``; ``lora`` trains
    low-rank adapters instead of the weights it names; ``options`` shapes the update
    (clipping, weight decay, accumulation, learning-rate groups)."""
    if attach is not None:
        forward = attach_loss(forward, attach, logits or "", labels, loss)
        metrics = [*metrics, *(["accuracy"] if attach == "cross_entropy" else [])]
    forward, drawn = seed_dropouts(forward)
    extra: dict = {}
    if lora is not None:
        forward, names, extra["lora"] = add_adapters(forward, lora)
    else:
        names = select_params(forward, trainable, freeze) if params is None else list(params)
    forward = freeze_batch_norms(forward, names)
    carried = _carried(forward)
    both = set(names) & set(carried)
    if both:
        raise GraphError(f"{sorted(both)} are running statistics, not trainable parameters")
    fwd = _with_outputs(forward, loss, metrics, carried)
    g, values = params_as_inputs(fwd, names + list(carried))
    gg = grad(g, loss, names)
    step = assemble(gg, optimizer, {n: values[n] for n in names},
                    {n: values[n] for n in carried}, loss, metrics, {**_masks(forward), **drawn},
                    options, extra)
    # the gradient rules repeat forward computations (a batch norm's element count, ...)
    merged = eliminate_common_subexpressions(step.graph).graph
    return TrainStep(eliminate_dead_nodes(merged), step.manifest, step.initial)


def _carried(g: Graph) -> dict[str, Value]:
    """Initializer name -> the forward value that replaces it next step."""
    out: dict[str, Value] = {}
    for n in g.nodes:
        for slot_in, slot_out in get_op(n.op).carries:
            v = n.inputs[slot_in]
            if v is not None and v in g.initializers:
                if v.name in out:
                    raise GraphError(f"{n.where()}: running statistic %{v.name} is updated by "
                                     "two nodes; use one BatchNorm layer per call site")
                out[v.name] = n.outputs[slot_out]
    return out


def _masks(g: Graph) -> dict[str, float]:
    inputs = set(g.inputs)
    out = {}
    for n in g.nodes:
        mask = get_op(n.op).mask
        if mask is not None:
            slot, attr = mask
            if n.inputs[slot] in inputs:
                out[n.inputs[slot].name] = float(n.attrs[attr])
    return out


def _with_outputs(g: Graph, loss: str, metrics: Sequence[str],
                  carried: dict[str, Value]) -> Graph:
    b = GraphBuilder.from_graph(g)
    outs = {loss: b.tensor(g.value(loss))}
    outs.update({m: b.tensor(g.value(m)) for m in metrics})
    outs.update({name + NEXT: b.tensor(v) for name, v in carried.items()})
    return b.build(outs)
