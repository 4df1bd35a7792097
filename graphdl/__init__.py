"""graphdl: declare a model as a static DAG of ops, differentiate it into a gradient graph, run it
in a NumPy interpreter or export it to ONNX and run it in ONNX Runtime."""
from __future__ import annotations

from . import legacy

legacy.install()  # the first layout's module paths (graphdl.trainer, ...) still import

from . import ops  # noqa: E402
from .core.builder import GraphBuilder, Tensor
from .core.errors import (DTypeError, FeedError, GradError, GraphError, OnnxError, PassError,
                     ShapeError, UnsupportedOpError, VerifyError)
from .tools.explain import explain
from .core.ir import Graph, Node, Value
from .ops import *  # noqa: F401,F403 - the op functions are the builder DSL
from .ops import __all__ as _ops_all
from .core.registry import OpDef, all_ops, get_op, register
from .onnx.specialisation import SpecialisableGraph, specialise
from .core.types import DType, Sym, TensorType
from .core.verify import verify


def to_onnx(graph: Graph, opset: int | None = None, target: str | None = None):
    """``graph`` as a standard ONNX ``ModelProto``: at ``opset``, or at the newest opset of
    ``target`` (``"onnxruntime==1.30"``), or by default at the portable opset 17 (raised only as
    far as the graph's ops need; graphdl/onnx/opsets.py says why). The IR version follows."""
    from .onnx.export import to_onnx as _to_onnx

    return _to_onnx(graph, opset, target=target)


def from_onnx(model, max_bytes: int | None = None, *, sequence_lengths=None,
              absent_inputs=(), constants=None) -> Graph:
    """A graph from an ``onnx.ModelProto`` or the path of an ``.onnx`` file; no tensor may
    exceed ``max_bytes`` (default: graphdl.core.limits.DEFAULT_MAX_BYTES, 4 GiB). A sequence input
    ``x`` needs its length in ``sequence_lengths`` and becomes tensor inputs ``x.0``, ``x.1``,
    ...; optional inputs are present unless named in ``absent_inputs``; ``constants`` binds
    graph inputs to values. Inputs graphdl needs at import time (axes, split sizes, ...) left
    unbound are specialised on at run time (see graphdl.onnx.importer.from_onnx and
    graphdl.onnx.specialisation)."""
    from .core.limits import DEFAULT_MAX_BYTES
    from .onnx.importer import from_onnx as _from_onnx

    return _from_onnx(model, DEFAULT_MAX_BYTES if max_bytes is None else max_bytes,
                      sequence_lengths=sequence_lengths, absent_inputs=absent_inputs,
                      constants=constants)


def run(graph: Graph, feeds: dict, backend: str = "numpy", provider: str = "cpu",
        max_bytes: int | None = None) -> dict:
    """Runs ``graph`` in the NumPy interpreter (``backend="numpy"``) or ONNX Runtime (``"ort"``,
    provider "cpu", "cuda" or "auto"); returns the outputs by name. Statically shaped values
    over ``max_bytes`` (default graphdl.core.limits.DEFAULT_MAX_BYTES, 4 GiB) are refused."""
    from .core.limits import DEFAULT_MAX_BYTES
    from .engine.runtime import run as _run

    return _run(graph, feeds, backend, provider, DEFAULT_MAX_BYTES if max_bytes is None
                else max_bytes)


__all__ = ["Graph", "GraphBuilder", "Tensor", "Node", "Value", "DType", "Sym", "TensorType",
           "GraphError", "ShapeError", "DTypeError", "GradError", "OnnxError", "FeedError",
           "PassError", "VerifyError", "UnsupportedOpError", "OpDef", "register", "get_op", "all_ops",
           "verify", "to_onnx", "from_onnx", "run", "specialise", "SpecialisableGraph", *_ops_all]

from . import nn  # noqa: E402 - layers (graphdl.nn.Dense, MLP)
from .training import minibatch as train  # noqa: E402 - minibatch SGD on a gradient graph

__all__ += ["nn", "train"]
__all__ += ["explain"]  # how the backprop recursion assembles a gradient

from . import optim  # noqa: E402 - optimisers as update-subgraph builders (graphdl.optim.Adam)

__all__ += ["optim"]

from .tools.profiling import profile  # noqa: E402 - where a model's or a training step's time goes

__all__ += ["profile"]
