"""Class labels fed to a graph checked before ONNX Runtime runs it.

graphdl's interpreter checks that every class index lies in [0, classes) inside the loss kernel
(graphdl.ops.losses.check_labels). ONNX Runtime has no such check: an index out of range fails
deep in a GatherElements kernel with a dump of its C++ state. So the ``ort`` engine checks the
labels it is fed against the same rule first, with the interpreter's message: one pass over
the labels, for the losses whose labels are a graph input.
"""
from __future__ import annotations

import weakref
from typing import Mapping

import numpy as np

from ..core.ir import Graph
from ..core.registry import get_op
from ..ops.losses import check_labels


_found: "weakref.WeakKeyDictionary[Graph, list[tuple[str, int]]]" = weakref.WeakKeyDictionary()


def fed_labels(graph: Graph) -> list[tuple[str, int]]:
    """(graph input name, class count) for every fed label input of a loss in ``graph``."""
    if graph not in _found:
        inputs = set(graph.inputs)
        pairs = []
        for n in graph.nodes:
            # ops whose input 1 holds class labels (OpDef.slots), with logits [N, C] as input 0
            if get_op(n.op).slots.get(1) != "labels" or n.inputs[1] not in inputs:
                continue
            shape = n.inputs[0].type.shape
            if shape is not None and len(shape) == 2 and isinstance(shape[1], int):
                pairs.append((n.inputs[1].name, shape[1]))
        _found[graph] = pairs
    return _found[graph]


def check_fed_labels(graph: Graph, feeds: Mapping[str, np.ndarray]) -> None:
    """GraphError (the interpreter's message) for a fed label outside [0, classes)."""
    for name, classes in fed_labels(graph):
        if name in feeds:
            check_labels(np.asarray(feeds[name]), classes)
