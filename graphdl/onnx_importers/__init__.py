"""The importer table: one short function per ONNX op type, building graphdl ops.

Each function takes a :class:`~graphdl.onnx_import.NodeCtx` and returns the node's outputs as
tensors. One module per op family registers its importers with :func:`importer`; importing this
package loads them all.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..onnx_import import ImportFn

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
from . import randomness  # noqa: E402,F401 - RandomUniformLike
