"""A training step cut in two at its gradients, so gradients can be averaged between them.

One process runs the whole step as one graph (graphdl.training.step). Data-parallel training
needs the gradients in between: every rank runs the *gradient graph* on its share of the batch
(outputs: the loss, metrics, the batch-norm statistics' next values and ``P_grad`` for every
trained parameter ``P``), the ranks all-reduce those outputs, and every rank runs the *update
graph* on the averaged gradients (inputs: the parameters, their gradients, the optimiser state
and the hyperparameters; outputs: ``NAME.next`` for the parameters and optimiser state). Both
are cut out of the one-graph step by name, so any step graphdl writes (or one read back from
its ONNX file) splits the same way, and both are standard ONNX.

The manifest of a split step is the step's manifest with a ``split`` entry (see
docs/training-step-format.md).
"""
from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..core.errors import GraphError
from ..core.fileio import write_atomic
from ..core.ir import Graph, Node, Value
from .step import NEXT, TrainStep

GRAD = "_grad"


@dataclass
class SplitStep:
    """The gradient graph and the update graph of one training step."""

    grad_graph: Graph
    update_graph: Graph
    manifest: dict[str, Any]  # the step's manifest with a "split" entry
    initial: dict[str, np.ndarray]

    @property
    def split(self) -> dict[str, Any]:
        return self.manifest["split"]

    def save(self, folder: str, name: str = "train_step") -> dict[str, str]:
        """Writes NAME.grad.onnx and NAME.update.onnx and rewrites NAME.json with the split
        recorded, each atomically; the one-graph NAME.onnx is left as it is."""
        from ..onnx.export import to_onnx

        os.makedirs(folder, exist_ok=True)
        paths = {"grad": os.path.join(folder, self.split["grad_graph"]),
                 "update": os.path.join(folder, self.split["update_graph"]),
                 "manifest": os.path.join(folder, f"{name}.json")}
        write_atomic(paths["grad"], to_onnx(self.grad_graph).SerializeToString())
        write_atomic(paths["update"], to_onnx(self.update_graph).SerializeToString())
        write_atomic(paths["manifest"], json.dumps(self.manifest, indent=1).encode())
        return paths


def split_step(step: TrainStep, name: str = "train_step") -> SplitStep:
    """``step`` as a gradient graph and an update graph (GraphError if it cannot be cut at
    its gradients, e.g. an update that reads the batch)."""
    m, g = step.manifest, step.graph
    kinds = {e["input"]: e["kind"] for e in m["state"]}
    params = [n for n, k in kinds.items() if k == "param"]
    stats = [n for n, k in kinds.items() if k == "running_stat"]
    opt_state = [n for n, k in kinds.items() if k == "optimizer"]
    grads = {p: _find(g, p + GRAD, "the gradient of trained parameter") for p in params}
    grad_outs = [m["loss"], *m["metrics"], *(s + NEXT for s in stats)]
    grad_g = _cut(g, f"{g.name}_grad", [g.value(n) for n in grad_outs] + list(grads.values()),
                  stop=set(), keep_inputs=_batch_names(m) + params + stats)
    hp = list(m["hyperparams"])
    upd_in = [g.value(n) for n in params] + list(grads.values()) + \
        [g.value(n) for n in opt_state + hp]
    upd_outs = [g.value(n + NEXT) for n in params + opt_state]
    upd_g = _cut(g, f"{g.name}_update", upd_outs, stop=set(upd_in),
                 keep_inputs=[v.name for v in upd_in])
    _check_inputs(grad_g, set(opt_state + hp), "gradient graph", "optimiser state or "
                  "hyperparameters")
    _check_inputs(upd_g, set(_batch_names(m) + stats), "update graph", "the batch or running "
                  "statistics (a per-rank value)")
    manifest = copy.deepcopy(m)
    manifest["split"] = {
        "grad_graph": f"{name}.grad.onnx", "update_graph": f"{name}.update.onnx",
        "gradients": {p: v.name for p, v in grads.items()},
        "grad_outputs": [v.name for v in grad_g.outputs],
        "update_inputs": [v.name for v in upd_g.inputs],
    }
    return SplitStep(grad_g, upd_g, manifest, dict(step.initial))


def _batch_names(m: dict[str, Any]) -> list[str]:
    return [s["name"] for s in m["batch_inputs"]] + list(m["masks"])


def _find(g: Graph, name: str, what: str) -> Value:
    if name not in g.by_name:
        raise GraphError(f"training step {g.name!r} cannot be split: no value {name!r} "
                         f"({what} {name[:-len(GRAD)]!r})")
    return g.by_name[name]


def _cut(g: Graph, name: str, outputs: list[Value], stop: set[Value],
         keep_inputs: Iterable[str]) -> Graph:
    """The part of ``g`` computing ``outputs``, with the values in ``stop`` as inputs: the
    nodes they need (not crossing ``stop``), the inputs among ``keep_inputs`` that are
    ``g``'s inputs or stop values, and any other input of ``g`` that the nodes read."""
    live: set[Value] = set(outputs)
    keep: list[Node] = []
    for n in reversed(g.nodes):
        if any(o in live and o not in stop for o in n.outputs):
            keep.append(n)
            live.update(v for v in n.inputs if v is not None)
    names = set(keep_inputs)
    by_name = {v.name: v for v in g.inputs} | {v.name: v for v in stop}
    inputs = [by_name[k] for k in dict.fromkeys(keep_inputs) if k in by_name]
    inputs += [v for v in g.inputs if v in live and v.name not in names]
    inits = {v: a for v, a in g.initializers.items() if v in live}
    return Graph(tuple(inputs), tuple(reversed(keep)), tuple(outputs), inits, name)


def _check_inputs(g: Graph, banned: set[str], what: str, why: str) -> None:
    used = {v for n in g.nodes for v in n.inputs if v is not None} | set(g.outputs)
    bad = [v.name for v in g.inputs if v.name in banned and v in used]
    if bad:
        raise GraphError(f"training step cannot be split: its {what} reads {bad}, {why}")
