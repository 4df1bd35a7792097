"""Errors a user can cause. Every message names what is wrong and where."""
from __future__ import annotations


class GraphError(Exception):
    """Base class of every error a user's graph, feed or file can cause."""


class ShapeError(GraphError):
    """Shapes that an op cannot accept, or a shape rule that cannot be satisfied."""


class DTypeError(GraphError):
    """Element types that an op cannot accept (graphdl never promotes implicitly)."""


class GradError(GraphError):
    """The backprop pass cannot build a gradient (non-scalar loss, bad VJP, ...)."""


class OnnxError(GraphError):
    """An ONNX model that cannot be imported or exported."""


class UnsupportedOpError(OnnxError):
    """An ONNX model holding ops graphdl does not import. ``proto`` is the (checked) model and
    ``nodes`` the positions of every such node, so a caller can still show the rest of it
    (``graphdl inspect`` does)."""

    def __init__(self, message: str, proto: object = None, nodes: tuple[int, ...] = ()):
        super().__init__(message)
        self.proto, self.nodes = proto, nodes


class FeedError(GraphError):
    """Feeds that do not match a graph's inputs (names, dtypes, shapes)."""


class PassError(GraphError):
    """A compiler pass failed; the message names the pass."""


class VerifyError(GraphError):
    """A graph that breaks an IR invariant."""
