"""Which graphdl node each exported ONNX node came from, kept in the ONNX file itself.

Export tags every ONNX node it emits with node metadata (``NodeProto.metadata_props``, standard
ONNX, ignored by runtimes): ``graphdl.node``, the graphdl node it lowers, and for gradient
nodes ``graphdl.grad_of``, the forward node the backprop pass built it for. So a profile of an
exported training step, even one saved to disk and loaded again, can say which forward op each
backward kernel belongs to (graphdl/profile.py).
"""
from __future__ import annotations

from typing import Any, Iterable

NODE, GRAD_OF = "graphdl.node", "graphdl.grad_of"


def tag(onnx_nodes: Iterable[Any], node: Any) -> None:
    """Marks ``onnx_nodes`` (NodeProtos) as emitted for graphdl ``node``."""
    for proto in onnx_nodes:
        entries = [(NODE, node.name)] + ([(GRAD_OF, node.grad_of)] if node.grad_of else [])
        for key, value in entries:
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, value


def read_tags(model: Any) -> dict[str, dict[str, str]]:
    """ONNX node name -> its graphdl tags (``{"graphdl.node": ..., "graphdl.grad_of": ...}``;
    empty for a model graphdl did not export)."""
    return {n.name: {p.key: p.value for p in n.metadata_props if p.key.startswith("graphdl.")}
            for n in model.graph.node}
