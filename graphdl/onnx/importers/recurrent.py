"""Importers of ONNX RNN, LSTM and GRU into graphdl's ``rnn``, ``lstm``, ``gru`` ops, which take
ONNX's own layouts (see graphdl/ops/recurrent.py), so the inputs map one to one.

Read: every direction, both layouts, peepholes, ``linear_before_reset``, RNN activations Tanh,
Relu or Sigmoid. Refused with an error naming the node: ``clip``, ``input_forget``, activations
other than the defaults for LSTM/GRU, and ``sequence_lens`` unless it is known at import time
and every entry equals the sequence length (graphdl unrolls a static length).
"""
from __future__ import annotations

import numpy as np

from ...core.builder import Tensor
from ..importer import NodeCtx
from . import importer

_DEFAULT_ACTS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh")}
_RNN_ACTS = ("tanh", "relu", "sigmoid")


def _activation(c: NodeCtx, n_dirs: int) -> str | None:
    """The RNN activation (one for every direction), or None for LSTM/GRU, whose activations
    must be the defaults."""
    acts = tuple(a.lower() for a in c.attr("activations", ()))
    if c.attr("activation_alpha", None) is not None or c.attr("activation_beta", None) is not None:
        raise c.fail("activation_alpha/activation_beta are not supported")
    op = c.node.op_type
    if op != "RNN":
        if acts and acts != _DEFAULT_ACTS[op] * n_dirs:
            raise c.fail(f"activations {list(acts)} are not supported; graphdl's {op} uses "
                         f"the defaults {list(_DEFAULT_ACTS[op])}")
        return None
    if not acts:
        return "tanh"
    if len(set(acts)) != 1 or acts[0] not in _RNN_ACTS:
        raise c.fail(f"activations {list(acts)} are not supported; graphdl's RNN takes one of "
                     f"{list(_RNN_ACTS)} for every direction")
    return acts[0]


def _check_sequence_lens(c: NodeCtx, x: Tensor, layout: int) -> None:
    if not c.has(4):
        return
    lens = c.static(4)
    steps = x.shape[1 if layout else 0] if x.shape is not None else None
    if lens is None or not np.all(np.asarray(lens) == steps):
        raise c.fail("sequence_lens must be known at import time and equal the sequence "
                     f"length {steps} for every batch item; graphdl unrolls a static length")


@importer("RNN", "LSTM", "GRU")
def _recurrent(c: NodeCtx) -> list[Tensor]:
    op = c.node.op_type
    direction = c.attr("direction", "forward")
    n_dirs = 2 if direction == "bidirectional" else 1
    if c.attr("clip", None) is not None:
        raise c.fail("clip is not supported")
    if c.attr("input_forget", 0):
        raise c.fail("input_forget=1 is not supported")
    act = _activation(c, n_dirs)
    layout = int(c.attr("layout", 0))
    x, w, r = c.x(0), c.x(1), c.x(2)
    hidden = c.attr("hidden_size", None)
    if hidden is not None and r.shape is not None and r.shape[-1] != hidden:
        raise c.fail(f"hidden_size={hidden} but R has shape {list(r.shape)}")
    _check_sequence_lens(c, x, layout)
    common = dict(direction=direction, layout=layout)
    if op == "RNN":
        return c.b.apply("rnn", _present([x, w, r, c.opt(3), c.opt(5)]), activation=act,
                         **common)
    if op == "GRU":
        return c.b.apply("gru", _present([x, w, r, c.opt(3), c.opt(5)]),
                         linear_before_reset=int(c.attr("linear_before_reset", 0)), **common)
    ins = [x, w, r, c.opt(3), c.opt(5), c.opt(6), c.opt(7)]
    return c.b.apply("lstm", _present(ins), **common)


def _present(ins: list) -> list:
    """The inputs without trailing absent ones."""
    while ins[-1] is None:
        ins.pop()
    return ins
