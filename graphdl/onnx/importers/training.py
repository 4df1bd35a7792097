"""Importer of the ai.onnx.preview.training domain's Gradient op: a gradient request node
(graphdl/ops/gradient.py) that ``passes.expand_gradients`` turns into the backprop graph."""
from __future__ import annotations

from ...core.builder import Tensor
from ..importer import NodeCtx
from . import importer


@importer("Gradient")
def _gradient(c: NodeCtx) -> list[Tensor]:
    """Inputs are xs then zs (zs: held constant); outputs d y / d x for each x of xs."""
    xs, zs = tuple(c.attr("xs")), tuple(c.attr("zs", ()))
    if tuple(c.node.input) != xs + zs:
        raise c.fail(f"inputs {list(c.node.input)} must be xs {list(xs)} followed by zs "
                     f"{list(zs)}")
    if len(c.node.output) > len(xs):
        raise c.fail(f"{len(c.node.output)} outputs for {len(xs)} xs")
    y = c.imp.tensor(c.attr("y"), c.where)
    grads = c.b.apply("gradient", [y, *[c.x(i) for i in range(len(xs))]])
    return list(grads)
