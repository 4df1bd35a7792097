"""Recurrent networks as composite ops: ``rnn``, ``lstm``, ``gru``.

Each op is defined by its decomposition over a static sequence length: one time step is a small
function written in the textbook gate form, unrolled T times. The backprop pass differentiates
that unrolled graph (backprop through time) with no special case, except the LSTM without
peepholes, whose recurrence is one ``lstm_scan`` op with BPTT as its own, much smaller, VJP
(ops/lstm_scan.py; it keeps training steps fast); the interpreter runs the decomposition too;
export lowers the whole op to the single ONNX ``RNN`` / ``LSTM`` / ``GRU`` node, which is exact
because the ops take ONNX's own weight layout:

- ``X`` [T, N, I] (``layout=0``) or [N, T, I] (``layout=1``); D = 2 directions if
  bidirectional, else 1.
- ``W`` [D, G*H, I] (input weights), ``R`` [D, G*H, H] (recurrent weights),
  ``B`` [D, 2*G*H] = [input biases | recurrent biases], both added (optional, zeros).
- ``initial_h`` (and ``initial_c``) [D, N, H] (``layout=1``: [N, D, H]); absent means zero.
- Outputs ``Y`` [T, D, N, H] (``layout=1``: [N, T, D, H]), the last state ``Y_h`` [D, N, H]
  (``layout=1``: [N, D, H]), and for ``lstm`` the last cell ``Y_c``.

The gate parameters W_*, U_*, b_* are blocks of these (row blocks of H rows, in ONNX's gate order):

- RNN (G=1): ``W_hx = W[d]``, ``W_hh = R[d]``, ``b_h = Wb + Rb``;
  ``h(i) = act(W_hh h(i-1) + W_hx x(i) + b_h)``. The output ``y(i) = act_y(W_yh h(i) + b_y)``
  is a dense layer on ``Y``.
- LSTM (G=4), blocks **i, o, f, c**: ``W_i, W_o, W_f, W_c`` in W, ``U_i, U_o, U_f, U_c`` in R,
  ``b_* = Wb_* + Rb_*``; optional peepholes ``P`` [D, 3H] = [p_i | p_o | p_f].
- GRU (G=3), blocks **z, r, h**: ``h~ = tanh(W_h x + U_h (r * h) + b_h)`` (the original GRU's form,
  ``linear_before_reset=0``) or ``tanh(W_h x + Wb_h + r * (U_h h + Rb_h))`` (``=1``, PyTorch's);
  ``h(t) = (1 - z) * h~ + z * h(t-1)`` in both.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import GraphError, ShapeError
from ..core.registry import OpDef, register
from ..core.types import Dim, TensorType, dim_mul, dims_equal, shape_str
from .activations import relu, sigmoid, tanh
from .common import need_float, same_dtype
from .linalg import gemm
from .lstm_scan import lstm_scan
from .shape import flatten, reshape, squeeze, transpose, unsqueeze
from .slice import concat
from .split import split

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
DIRECTIONS = ("forward", "reverse", "bidirectional")
RNN_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": tanh, "relu": relu, "sigmoid": sigmoid}
_ONNX_ACT = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}

# -- shape rule --------------------------------------------------------------------------------


class _Dims:
    """The sizes an input set fixes: T, N, I, H, D, and the layout."""

    def __init__(self, kind: str, types: list, attrs: dict):
        x, w, r = types[:3]
        if attrs["direction"] not in DIRECTIONS:
            raise GraphError(f"direction must be one of {DIRECTIONS}, got {attrs['direction']!r}")
        if attrs.get("activation", "tanh") not in RNN_ACTIVATIONS:
            raise GraphError(f"activation must be one of {sorted(RNN_ACTIVATIONS)}, "
                             f"got {attrs['activation']!r}")
        if attrs.get("linear_before_reset", 0) not in (0, 1):
            raise GraphError(f"linear_before_reset must be 0 or 1, "
                             f"got {attrs['linear_before_reset']!r}")
        if attrs["layout"] not in (0, 1):
            raise GraphError(f"layout must be 0 (time-major) or 1 (batch-major), "
                             f"got {attrs['layout']!r}")
        for t, name in ((x, "X"), (w, "W"), (r, "R")):
            if t.shape is None or len(t.shape) != 3:
                raise ShapeError(f"{kind}: {name} must have rank 3, got {shape_str(t.shape)}")
        self.layout = attrs["layout"]
        self.T, self.N = (x.shape[1], x.shape[0]) if self.layout else x.shape[:2]
        self.I, self.H = x.shape[2], r.shape[2]
        self.D = 2 if attrs["direction"] == "bidirectional" else 1
        self.G = GATES[kind]
        if not isinstance(self.T, int) or self.T < 1:
            raise ShapeError(f"{kind}: the sequence length must be a static int >= 1, got "
                             f"{self.T} in X {shape_str(x.shape)}")
        if not isinstance(self.H, int):
            raise ShapeError(f"{kind}: the hidden size (R's last dim) must be static, got "
                             f"R {shape_str(r.shape)}")

    def state(self) -> tuple[Dim, ...]:
        return (self.N, self.D, self.H) if self.layout else (self.D, self.N, self.H)

    def sequence(self) -> tuple[Dim, ...]:
        if self.layout:
            return (self.N, self.T, self.D, self.H)
        return (self.T, self.D, self.N, self.H)


def _expect(kind: str, name: str, t: TensorType | None, want: tuple) -> None:
    if t is None or t.shape is None:
        return
    if len(t.shape) != len(want) or any(dims_equal(a, b) is False for a, b in zip(t.shape, want)):
        raise ShapeError(f"{kind}: {name} must be {shape_str(want)}, got {shape_str(t.shape)}")


def _infer(kind: str):
    def infer(types: list, attrs: dict) -> list[TensorType]:
        dt = same_dtype(types, f"{kind} inputs")
        need_float(types[0], f"{kind} input X")
        d = _Dims(kind, types, attrs)
        gh = d.G * d.H
        _expect(kind, "W", types[1], (d.D, gh, d.I))
        _expect(kind, "R", types[2], (d.D, gh, d.H))
        opt = [("B", (d.D, 2 * gh)), ("initial_h", d.state()), ("initial_c", d.state()),
               ("P", (d.D, 3 * d.H))]
        for (name, want), t in zip(opt, types[3:]):
            _expect(kind, name, t, want)
        n_states = 2 if kind == "lstm" else 1
        return [TensorType(dt, d.sequence())] + [TensorType(dt, d.state())] * n_states
    return infer


# -- one time step, in the textbook gate form -------------------------------------------------


def rnn_step(xw: Tensor, h: Tensor | None, r_t: Tensor, act: Callable) -> Tensor:
    """``h(i) = act(W_hh h(i-1) + W_hx x(i) + b_h)``; ``xw`` = ``W_hx x(i) + b_h``,
    ``r_t`` = ``W_hh`` transposed (rows of h are batch items). ``h`` None is h(0) = 0."""
    return act(xw if h is None else xw + h @ r_t)


def lstm_step(xw: Tensor, h: Tensor | None, c: Tensor | None, r_t: Tensor,
              peep: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """The LSTM cell with peepholes (without them the recurrence is ops/lstm_scan.py): gates
    i, o, f from ``W_* x + U_* h + b_*`` plus peepholes on the cell, candidate
    ``c~ = tanh(W_c x + U_c h + b_c)``, ``c = f * c(t-1) + i * c~``, ``h = o * tanh(c)``.
    ``xw`` holds ``W_* x + b_*`` in ONNX's order i, o, f, c."""
    pre = xw if h is None else xw + h @ r_t
    hidden = r_t.shape[0]
    i, o, f, cand = split(pre, [hidden] * 4, axis=-1)
    if c is not None:
        i, f = i + peep[0] * c, f + peep[2] * c
    i, cand = sigmoid(i), tanh(cand)
    c_new = i * cand if c is None else sigmoid(f) * c + i * cand
    return sigmoid(o + peep[1] * c_new) * tanh(c_new), c_new


def gru_step(xw: Tensor, h: Tensor | None, r_t: Sequence[Tensor], rb_h: Tensor | None,
             lbr: int) -> Tensor:
    """The GRU cell: ``z = sigmoid(W_z x + U_z h + b_z)``, ``r`` likewise, candidate ``h~``
    (see the module docstring for the two reset forms), ``h = (1 - z) * h~ + z * h(t-1)``.
    ``xw`` holds ``W_* x`` plus every bias outside the reset product, order z, r, h;
    ``r_t`` = (``[U_z | U_r]`` transposed, ``U_h`` transposed)."""
    hidden = r_t[1].shape[0]
    xz, xr, xh = split(xw, [hidden] * 3, axis=-1)
    if h is not None:
        hz, hr = split(h @ r_t[0], [hidden] * 2, axis=-1)
        xz, xr = xz + hz, xr + hr
    z, r = sigmoid(xz), sigmoid(xr)
    if lbr:
        inner = None if h is None else h @ r_t[1]
        inner = rb_h if inner is None else (inner if rb_h is None else inner + rb_h)
        cand = tanh(xh if inner is None else xh + r * inner)
    else:
        cand = tanh(xh if h is None else xh + (r * h) @ r_t[1])
    return (1.0 - z) * cand if h is None else (1.0 - z) * cand + z * h


# -- the unrolled decomposition ----------------------------------------------------------------


def _per_direction(t: Tensor | None, n_dirs: int) -> list[Tensor | None]:
    """``t`` [D, ...] as D tensors without the leading axis (None stays None)."""
    if t is None:
        return [None] * n_dirs
    return [squeeze(p, (0,)) for p in split(t, [1] * n_dirs, axis=0)]


def _input_projection(kind: str, x: Tensor, w: Tensor, bias: Tensor | None,
                      attrs: dict) -> tuple[Tensor, Tensor | None]:
    """``W x(t) + biases`` for every t in one matmul [T, N, G*H]; and, for a GRU with
    linear_before_reset, the recurrent bias of h~ that stays inside the reset product."""
    gh = w.shape[0]
    rb_h = both = None
    if bias is not None:
        wb, rb = split(bias, [gh, gh], axis=0)
        if kind == "gru" and attrs["linear_before_reset"]:
            hidden = gh // 3
            rb_zr, rb_h = split(rb, [2 * hidden, hidden], axis=0)
            zeros = x.b.const(np.zeros(hidden, x.dtype.np))
            rb = concat([rb_zr, zeros], 0)
        both = wb + rb
    # one Gemm over [T*N, I]: its weight gradient is one GEMM too, not T products summed
    xw = gemm(flatten(x, 2), w, both, transB=1)
    return reshape(xw, [x.shape[0], -1, gh]), rb_h


def _direction(kind: str, x: Tensor, w: Tensor, r: Tensor, bias: Tensor | None,
               h: Tensor | None, c: Tensor | None, peep: Tensor | None, attrs: dict,
               reverse: bool) -> tuple[Tensor, Tensor, Tensor | None]:
    """One direction over the whole sequence: the states [T, N, H] in time order, the last h
    and c. An LSTM without peepholes runs as ``lstm_scan`` (its VJP is BPTT written out)."""
    if kind == "lstm" and peep is None:
        both = None
        if bias is not None:
            wb, rb = split(bias, [w.shape[0]] * 2, axis=0)
            both = wb + rb
        y, h, c = lstm_scan(x, w, r, both, h, c, reverse)[:3]
        return y, h, c
    xw, rb_h = _input_projection(kind, x, w, bias, attrs)
    t_len = x.shape[0]
    xws = [squeeze(s, (0,)) for s in split(xw, [1] * t_len, axis=0)]
    order = range(t_len - 1, -1, -1) if reverse else range(t_len)
    if kind == "gru":
        hidden = r.shape[1]
        r_zr, r_h = split(r, [2 * hidden, hidden], axis=0)
        r_t: Any = (transpose(r_zr), transpose(r_h))
    else:
        r_t = transpose(r)
    peeps = None if peep is None else split(peep, [r.shape[1]] * 3, axis=0)
    act = RNN_ACTIVATIONS.get(attrs.get("activation", "tanh"))
    hs: dict[int, Tensor] = {}
    for t in order:
        if kind == "rnn":
            h = rnn_step(xws[t], h, r_t, act)
        elif kind == "lstm":
            h, c = lstm_step(xws[t], h, c, r_t, peeps)
        else:
            h = gru_step(xws[t], h, r_t, rb_h, attrs["linear_before_reset"])
        hs[t] = h
    return concat([unsqueeze(hs[t], (0,)) for t in range(t_len)], 0), h, c


def _decompose(kind: str):
    def decompose(b, ins: list, attrs: dict) -> list[Tensor]:
        ins = list(ins) + [None] * (7 - len(ins))
        x, w, r, bias, h0, c0, peep = ins
        if attrs["layout"]:
            x = transpose(x, (1, 0, 2))
            h0, c0 = [None if s is None else transpose(s, (1, 0, 2)) for s in (h0, c0)]
        n_dirs = 2 if attrs["direction"] == "bidirectional" else 1
        per = [_per_direction(t, n_dirs) for t in (w, r, bias, h0, c0, peep)]
        ys, last_h, last_c = [], [], []
        for d in range(n_dirs):
            reverse = attrs["direction"] == "reverse" or d == 1
            y, h, c = _direction(kind, x, *[p[d] for p in per], attrs, reverse)
            ys.append(unsqueeze(y, (1,)))
            last_h.append(unsqueeze(h, (0,)))
            last_c.append(None if c is None else unsqueeze(c, (0,)))
        outs = [concat(ys, 1), concat(last_h, 0)]
        if kind == "lstm":
            outs.append(concat(last_c, 0))
        if attrs["layout"]:
            outs = [transpose(outs[0], (2, 0, 1, 3))] + [transpose(s, (1, 0, 2)) for s in outs[1:]]
        return outs
    return decompose


# -- ONNX lowering: the single RNN / LSTM / GRU node -------------------------------------------


def _transposed(ctx: Any, v: Any, perm: tuple[int, ...]) -> str | None:
    return None if v is None else ctx.emit("Transpose", [v], 1, perm=list(perm))[0]


def _lower(kind: str):
    onnx_type = kind.upper()

    def lower(ctx: Any, node: Any) -> None:
        """Batch-major (layout=1) is lowered as Transposes around a time-major node, which is
        the same function: onnxruntime's CPU kernels refuse layout=1. In float64, which they
        lack, the op is exported as its unrolled decomposition."""
        if node.inputs[0].type.dtype.np == np.float64:
            ctx.emit_decomposition(node)
            return
        ins = list(node.inputs) + [None] * (7 - len(node.inputs))
        onnx_ins: list = ins[:4] + [None] + ins[4:(7 if kind == "lstm" else 5)]
        outs: list = list(node.outputs)
        batch_major = node.attrs["layout"] == 1
        if batch_major:
            onnx_ins = [_transposed(ctx, v, (1, 0, 2)) if k in (0, 5, 6) else v
                        for k, v in enumerate(onnx_ins)]
            outs = [ctx.fresh(v.name) for v in node.outputs]
        attrs = {"hidden_size": int(node.inputs[2].type.shape[2]),
                 "direction": node.attrs["direction"]}
        n_dirs = 2 if node.attrs["direction"] == "bidirectional" else 1
        if kind == "rnn":
            attrs["activations"] = [_ONNX_ACT[node.attrs["activation"]]] * n_dirs
        if kind == "gru":
            attrs["linear_before_reset"] = node.attrs["linear_before_reset"]
        ctx.emit(onnx_type, onnx_ins, outs, **attrs)
        if batch_major:
            ctx.emit("Transpose", [outs[0]], [node.outputs[0]], perm=[2, 0, 1, 3])
            for tmp, final in zip(outs[1:], node.outputs[1:]):
                ctx.emit("Transpose", [tmp], [final], perm=[1, 0, 2])

    lower.__doc__ = f"-> ONNX {onnx_type}"
    return lower


_COMMON = {"direction": "forward", "layout": 0}
_SPECS = {
    "rnn": ((3, 5), dict(_COMMON, activation="tanh"),
            "Vanilla RNN h(i) = act(W_hh h(i-1) + W_hx x(i) + b_h) (ONNX RNN)."),
    "lstm": ((3, 7), dict(_COMMON),
             "LSTM with input, output, forget gates and candidate cell (ONNX LSTM)."),
    "gru": ((3, 5), dict(_COMMON, linear_before_reset=0),
            "GRU h(t) = (1 - z) * h~ + z * h(t-1) (ONNX GRU)."),
}
#: input slots: W, R and B are trained, the initial states are not; LSTM's peepholes P are
_SLOTS = {"rnn": {1: "weight", 2: "weight", 3: "bias", 4: "initial state"},
          "lstm": {1: "weight", 2: "weight", 3: "bias", 4: "initial state",
                   5: "initial state", 6: "weight"},
          "gru": {1: "weight", 2: "weight", 3: "bias", 4: "initial state"}}
#: FLOPs per hidden unit of the state update after the gates
_UPDATE = {"rnn": 0, "lstm": 5, "gru": 5}


def _flops(kind: str) -> Callable[[Any], Dim]:
    """D * T * N * (2*G*H*(I + H) + (2 or 3)*G*H + U*H): per direction, step and batch item
    the two matrix products, the gate adds (and bias), activations, and the state update."""
    def flops(n: Any) -> Dim:
        x, w = n.inputs[0].type.shape, n.inputs[1].type.shape
        if x is None or w is None or len(x) != 3 or len(w) != 3:
            return None
        steps, batch = (x[1], x[0]) if n.attrs.get("layout") else (x[0], x[1])
        dirs, rows, size = w
        if not isinstance(rows, int) or not isinstance(size, int):
            return None
        hidden = rows // GATES[kind]
        has_bias = len(n.inputs) > 3 and n.inputs[3] is not None
        per_item = 2 * rows * (size + hidden) + (3 if has_bias else 2) * rows \
            + _UPDATE[kind] * hidden
        return dim_mul(dim_mul(dirs, steps), dim_mul(batch, per_item))

    return flops


for _kind, (_arity, _attrs, _doc) in _SPECS.items():
    register(OpDef(_kind, _infer(_kind), _arity, lower=_lower(_kind),
                   decompose=_decompose(_kind), attrs=_attrs, traits={"composite"}, doc=_doc,
                   slots=_SLOTS[_kind], flops=_flops(_kind)))


# -- builder functions -------------------------------------------------------------------------


def _trim(ins: list) -> list:
    """The inputs without trailing absent ones."""
    while ins[-1] is None:
        ins.pop()
    return ins


def rnn(x: Tensor, w: Tensor, r: Tensor, b: Tensor | None = None,
        initial_h: Tensor | None = None, activation: str = "tanh", direction: str = "forward",
        layout: int = 0) -> list[Tensor]:
    """The vanilla RNN over ``x``; returns [Y, Y_h] (all states, last state). Layouts and the
    parameters' blocks: see this module's docstring."""
    return x.b.apply("rnn", _trim([x, w, r, b, initial_h]),
                     activation=activation, direction=direction,
                     layout=int(layout))


def lstm(x: Tensor, w: Tensor, r: Tensor, b: Tensor | None = None,
         initial_h: Tensor | None = None, initial_c: Tensor | None = None,
         p: Tensor | None = None, direction: str = "forward", layout: int = 0) -> list[Tensor]:
    """The LSTM over ``x``; returns [Y, Y_h, Y_c] (all h, last h, last cell)."""
    return x.b.apply("lstm", _trim([x, w, r, b, initial_h, initial_c, p]), direction=direction,
                     layout=int(layout))


def gru(x: Tensor, w: Tensor, r: Tensor, b: Tensor | None = None,
        initial_h: Tensor | None = None, linear_before_reset: int = 0,
        direction: str = "forward", layout: int = 0) -> list[Tensor]:
    """The GRU over ``x``; returns [Y, Y_h]. ``linear_before_reset=0`` is the original GRU's
    ``U_h (r * h)``, 1 is PyTorch's ``r * (U_h h + b)``."""
    return x.b.apply("gru", _trim([x, w, r, b, initial_h]),
                     linear_before_reset=int(linear_before_reset), direction=direction,
                     layout=int(layout))
