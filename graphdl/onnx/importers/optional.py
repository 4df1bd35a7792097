"""Importers of ONNX optional ops, resolved at import time.

graphdl's graphs are static, so whether an optional holds a value is known when the model is
imported (an optional graph input is present unless ``from_onnx`` is told it is absent; see
:mod:`graphdl.onnx.boundary`). A present optional is simply its value (a tensor or a static
sequence), an absent one an :class:`~graphdl.onnx.boundary.Absent`: Optional wraps or makes
one, OptionalHasElement is a bool constant, and OptionalGetElement unwraps (an absent one is
refused, as it is an error in ONNX too).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...core.builder import Tensor
from ..boundary import Absent
from ..importer import NodeCtx
from . import importer

if TYPE_CHECKING:
    from .sequence import StaticSequence


@importer("Optional")
def _optional(c: NodeCtx) -> "Tensor | StaticSequence | Absent":
    """With an input, that value (present); without, an absent optional of type ``type``."""
    if c.has(0):
        return c.value(0)
    if "type" not in c.attrs:
        raise c.fail("an Optional without an input needs the attribute 'type'")
    return Absent(c.where)


@importer("OptionalHasElement")
def _optional_has_element(c: NodeCtx) -> object:
    """Whether the input holds a value: false when it is absent or not given at all."""
    present = c.has(0) and not isinstance(c.value(0), Absent)
    return c.defer_constant(np.asarray(present, np.bool_))


@importer("OptionalGetElement")
def _optional_get_element(c: NodeCtx) -> "Tensor | StaticSequence":
    """The value an optional holds (a tensor or sequence input is itself)."""
    value = c.value(0)
    if isinstance(value, Absent):
        raise c.fail(f"input 0 ({c.node.input[0]!r}) is an absent optional (from "
                     f"{value.where}); OptionalGetElement of it is an error in ONNX too")
    return value
