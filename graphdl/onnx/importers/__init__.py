"""The importer table: one short function per ONNX op type, building graphdl ops.

Each function takes a :class:`~graphdl.onnx.importer.NodeCtx` and returns the node's outputs as
tensors. One module per op family registers its importers with :func:`importer`; importing this
package loads them all.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.registry import all_ops

if TYPE_CHECKING:
    from ..importer import ImportFn

IMPORTERS: dict[str, "ImportFn"] = {}


def importer(*op_types: str):
    """Registers the decorated function as the importer of ``op_types``."""
    def deco(fn: "ImportFn") -> "ImportFn":
        for t in op_types:
            if t in IMPORTERS:
                raise ValueError(f"two importers for ONNX op {t!r}")
            IMPORTERS[t] = fn
        return fn
    return deco


from . import core  # noqa: E402,F401 - registers the importers
from . import shape  # noqa: E402,F401 - shape plumbing, Split, Pad, Tile
from . import losses  # noqa: E402,F401 - SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss
from . import recurrent  # noqa: E402,F401 - RNN, LSTM, GRU
from . import conv  # noqa: E402,F401 - Conv, ConvTranspose, MaxPool, AveragePool, Global*Pool
from . import normalization  # noqa: E402,F401 - BatchNormalization (inference, training)
from . import sequence  # noqa: E402,F401 - static sequences (after core: wraps Identity)
from . import optional  # noqa: E402,F401 - Optional* ops, presence known at import
from . import strings  # noqa: E402,F401 - StringNormalizer
from . import training  # noqa: E402,F401 - Gradient (ai.onnx.preview.training)
from . import transformer  # noqa: E402,F401 - Erf, Gelu, LayerNormalization, HardSwish, ...
from . import positions  # noqa: E402,F401 - Trilu, CumSum, ArgMax, OneHot
from . import resize  # noqa: E402,F401 - Resize
from . import randomness  # noqa: E402,F401 - RandomUniformLike


def one_to_one(op_name: str) -> "ImportFn":
    """The importer of an op that declares its ONNX op (``OpDef.onnx_type``): the node's inputs
    and attributes, as they are."""
    def imp(c):
        ins = [c.x(i) if c.has(i) else None for i in range(len(c.node.input))]
        return c.b.apply(op_name, ins, **c.attrs)

    return imp


def import_table() -> dict[str, "ImportFn"]:
    """ONNX op type -> its importer: the importer modules' own, then every registered op that
    is an ONNX op one to one (so adding such an op needs only its OpDef)."""
    table = {op.onnx_type: one_to_one(name) for name, op in all_ops().items()
             if op.onnx_type is not None}
    table.update(IMPORTERS)
    return table
