"""``lstm_scan``: the LSTM recurrence over a whole sequence as one op whose VJP is backprop
through time written out, so a training step stays small and fast.

The ``lstm`` composite (ops/recurrent.py) computes ``W x(t) + b`` for every t in one matmul and
hands the recurrence to this op. Differentiating the unrolled cell node by node gave ~40 small
nodes per time step (a Transpose per matmul, one MatMul and Add per step for dR, a Sub and
Muls per sigmoid); this VJP builds the chapter's BPTT directly:

- every gate derivative for all T steps at once, as a few large elementwise nodes over
  [T, N, 4H] (``K`` below), because the forward saved the activated gates and cells;
- per step only what the recurrence forces: ``dc``, the four gate gradients as ONE product
  ``[dc, dh, dc, dc] * K(t)``, ``dh(t-1) = dpre(t) @ R`` and ``dc(t-1) = dc * f``;
- ``dR`` as ONE matmul over all steps, and ``d xw`` (so ``dW``, ``dB`` too, through the
  input projection) as one tensor [T, N, 4H].

Inputs: ``xw`` [T, N, 4H] (``W x + b``, ONNX's gate blocks i, o, f, c), ``R`` [4H, H], optional
``h0``, ``c0`` [N, H]; attribute ``reverse`` runs t = T-1 .. 0. Outputs: ``Y`` [T, N, H] (h(t) in
time order), the last h and c [N, H], and what the VJP reads instead of recomputing it: ``C``
[T, N, H] (c(t)), ``S`` [T, N, 3H] (sigmoid gates i, o, f) and ``Gc`` [T, N, H] (c~(t)).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import Call, OpDef, register
from ..core.types import TensorType, shape_str
from .activations import sigmoid_kernel
from .common import need_float, same_dtype
from .linalg import gemm, matmul
from .shape import flatten, reshape, squeeze, zeros_like
from .slice import concat
from .split import split


#: the values each time step saves for the VJP (no copies: the forward computes them anyway)
SAVED = ("i", "o", "f", "g", "ig", "fc", "c", "tc", "h")
FIXED = 4  # outputs Y, last h, last c, Hprev; then len(SAVED) per step


def _infer(types: list, attrs: dict) -> list[TensorType]:
    xw, r = types[:2]
    dt = same_dtype(types, "lstm_scan inputs")
    need_float(xw, "lstm_scan input xw")
    if xw.shape is None or len(xw.shape) != 3 or r.shape is None or len(r.shape) != 2:
        raise ShapeError(f"lstm_scan: xw must be [T, N, 4H] and R [4H, H], got "
                         f"{shape_str(xw.shape)} and {shape_str(r.shape)}")
    t_len, n, hid = xw.shape[0], xw.shape[1], r.shape[1]
    if not isinstance(t_len, int) or not isinstance(hid, int) or xw.shape[2] != 4 * hid:
        raise ShapeError(f"lstm_scan: needs a static T and xw [T, N, 4H] for R [4H, H] "
                         f"(static H), got {shape_str(xw.shape)} and {shape_str(r.shape)}")
    seq, state = TensorType(dt, (t_len, n, hid)), TensorType(dt, (n, hid))
    return [seq, state, state, seq] + [state] * (len(SAVED) * t_len)


def _order(t_len: int, reverse: int) -> range:
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


def _kernel(xw: np.ndarray, r: np.ndarray, h0: np.ndarray | None = None,
            c0: np.ndarray | None = None, *, reverse: int) -> tuple[np.ndarray, ...]:
    t_len, n, hid = xw.shape[0], xw.shape[1], r.shape[1]
    y, h_prev, cells, tcs, igs, fcs = np.empty((6, t_len, n, hid), xw.dtype)
    sig, cand = np.empty((t_len, n, 3 * hid), xw.dtype), np.empty((t_len, n, hid), xw.dtype)
    r_t = np.ascontiguousarray(r.T)
    h, c = h0, c0
    for t in _order(t_len, reverse):
        h_prev[t] = 0 if h is None else h
        pre = xw[t] if h is None else xw[t] + h @ r_t
        sig[t] = sigmoid_kernel(pre[:, :3 * hid])
        np.tanh(pre[:, 3 * hid:], out=cand[t])
        i, o, f = sig[t, :, :hid], sig[t, :, hid:2 * hid], sig[t, :, 2 * hid:]
        ig = np.multiply(i, cand[t], out=igs[t])
        if c is None:
            fcs[t] = 0
            cells[t] = ig
        else:
            np.add(np.multiply(f, c, out=fcs[t]), ig, out=cells[t])
        c_new = cells[t]
        np.tanh(c_new, out=tcs[t])
        h = np.multiply(o, tcs[t], out=y[t])
        c = c_new
    saved = [a for t in range(t_len) for a in (sig[t, :, :hid], sig[t, :, hid:2 * hid],
                                                sig[t, :, 2 * hid:], cand[t], igs[t], fcs[t],
                                                cells[t], tcs[t], y[t])]
    return (y, h.copy(), c.copy(), h_prev, *saved)


# -- ONNX lowering: the unrolled recurrence on [N, *] slices -----------------------------------


def _split_steps(ctx: Any, x: Any, t_len: int) -> list[str]:
    """[T, N, K] -> T pieces [N, K]: a Split of static sizes (N may be symbolic, and graphdl's
    importer reads static sizes back), each piece squeezed (onnxruntime aliases, no copy)."""
    pieces = ctx.emit("Split", [x, ctx.const(np.ones(t_len, np.int64))], t_len, axis=0)
    zero = ctx.const(np.asarray([0], np.int64))
    return [ctx.emit("Squeeze", [p, zero])[0] for p in pieces]


def _stack(ctx: Any, pieces: list, out: Any, t_len: int, hid: int) -> None:
    """T pieces [N, H] -> out [T, N, H]."""
    flat = ctx.emit("Concat", pieces, 1, axis=0)[0]
    ctx.emit("Reshape", [flat, ctx.const(np.asarray([t_len, -1, hid], np.int64))], [out])


def _lower(ctx: Any, node: Any) -> None:
    """Per step Gemm (h R^T + xw(t)), Split, Sigmoid, Tanh, Split, Mul, Mul, Add, Tanh, Mul;
    the saved values are those nodes' own outputs."""
    ins = list(node.inputs) + [None] * (4 - len(node.inputs))
    xw, r, h, c = ins
    t_len, hid = xw.type.shape[0], r.type.shape[1]
    steps = _split_steps(ctx, xw, t_len)
    gate_sizes = ctx.const(np.asarray([3 * hid, hid], np.int64))
    thirds = ctx.const(np.asarray([hid] * 3, np.int64))
    hs, prev = [None] * t_len, [None] * t_len
    for t in _order(t_len, node.attrs["reverse"]):
        out = dict(zip(SAVED, node.outputs[FIXED + len(SAVED) * t:]))
        prev[t] = h
        pre = steps[t] if h is None else ctx.emit("Gemm", [h, r, steps[t]], transB=1)[0]
        s_pre, g_pre = ctx.emit("Split", [pre, gate_sizes], 2, axis=1)
        s = ctx.emit("Sigmoid", [s_pre])[0]
        g = ctx.emit("Tanh", [g_pre], [out["g"]])[0]
        i, o, f = ctx.emit("Split", [s, thirds], [out["i"], out["o"], out["f"]], axis=1)
        ig = ctx.emit("Mul", [i, g], [out["ig"]])[0]
        if c is None:  # c(t-1) = 0: f * c(t-1) is zeros, c = i * g
            ctx.emit("Mul", [f, ctx.const(np.zeros((), xw.type.dtype.np))], [out["fc"]])
            c = ctx.emit("Identity", [ig], [out["c"]])[0]
        else:
            fc = ctx.emit("Mul", [f, c], [out["fc"]])[0]
            c = ctx.emit("Add", [fc, ig], [out["c"]])[0]
        h = hs[t] = ctx.emit("Mul", [o, ctx.emit("Tanh", [c], [out["tc"]])[0]], [out["h"]])[0]
    y_out, h_out, c_out, prev_out = node.outputs[:FIXED]
    if y_out.name not in ctx.unread:
        _stack(ctx, hs, y_out, t_len, hid)
    if prev_out.name not in ctx.unread:
        if any(p is None for p in prev):  # zeros [N, H] where the recurrence starts from 0
            zero = ctx.emit("Mul", [hs[0], ctx.const(np.zeros((), xw.type.dtype.np))])[0]
            prev = [zero if p is None else p for p in prev]
        _stack(ctx, prev, prev_out, t_len, hid)
    ctx.emit("Identity", [h], [h_out])
    ctx.emit("Identity", [c], [c_out])


# -- the VJP: backprop through time ------------------------------------------------------------


def _sum(*terms: Tensor | None) -> Tensor | None:
    out = None
    for t in terms:
        if t is not None:
            out = t if out is None else out + t
    return out


def _steps(t: Tensor | None, t_len: int) -> list:
    """[T, N, K] -> T tensors [N, K] (None -> Nones)."""
    if t is None:
        return [None] * t_len
    return [squeeze(p, (0,)) for p in split(t, [1] * t_len, axis=0)]


def _sig_grad(g: Tensor | None, s: Tensor) -> Tensor | None:
    return None if g is None else g * (s - s * s)


def _cell_grad(dh: Tensor, dc: Tensor | None, v: dict, gv: dict) -> tuple[Tensor, Tensor]:
    """One step back through the cell: (the gradient of f * c(t-1), to be multiplied by f for
    c(t-1); d pre(t) [N, 4H]) from dh, the dc flowing back from later steps and the gradients
    ``gv`` of the saved values ``v``. Each gate's factor is a product the forward already
    holds: i*g, h = o*tanh(c), f*c(t-1) (zeros at the start)."""
    i, o, f, g, ig, fc, tc, h = (v[k] for k in ("i", "o", "f", "g", "ig", "fc", "tc", "h"))
    dc = _sum(dc, gv["c"], dh * (o - h * tc),
              None if gv["tc"] is None else gv["tc"] * (1.0 - tc * tc))
    d_ig, d_fc = _sum(dc, gv["ig"]), _sum(dc, gv["fc"])
    d_i = _sum(d_ig * (ig - ig * i), _sig_grad(gv["i"], i))
    d_o = _sum(dh * (h - h * o), _sig_grad(gv["o"], o))
    d_f = _sum(d_fc * (fc - fc * f), _sig_grad(gv["f"], f))
    d_g = _sum(d_ig * (i - ig * g), None if gv["g"] is None else gv["g"] * (1.0 - g * g))
    return d_fc, concat([d_i, d_o, d_f, d_g], 1)


def _vjp(b, c: Call, gys):
    """d xw, dR, dh0, dc0 from the gradients of every output (see the module docstring)."""
    xw, r, h0, c0 = (list(c.inputs) + [None] * 4)[:4]
    t_len, hid, rev = xw.shape[0], r.shape[1], c.attrs["reverse"]
    k = len(SAVED)
    saved = [dict(zip(SAVED, c.outputs[FIXED + k * t:FIXED + k * (t + 1)]))
             for t in range(t_len)]
    g_saved = [dict(zip(SAVED, gys[FIXED + k * t:FIXED + k * (t + 1)])) for t in range(t_len)]
    g_y, g_h, g_c, g_prev = gys[:FIXED]
    gy_t, gprev_t = _steps(g_y, t_len), _steps(g_prev, t_len)
    order = list(_order(t_len, rev))
    dpres: list = [None] * t_len
    dh_rec, dc_rec = g_h, g_c
    for n in range(t_len - 1, -1, -1):  # backwards through the steps as the forward ran them
        t = order[n]
        prev = saved[order[n - 1]] if n > 0 else None
        dh = _sum(gy_t[t], g_saved[t]["h"], dh_rec)
        dh = zeros_like(saved[t]["h"]) if dh is None else dh
        d_fc, dpres[t] = _cell_grad(dh, dc_rec, saved[t], g_saved[t])
        dh_rec = dc_rec = None
        if prev is not None or h0 is not None:
            dh_rec = _sum(matmul(dpres[t], r), gprev_t[t])
        if prev is not None or c0 is not None:
            dc_rec = d_fc * saved[t]["f"]
    d_xw2 = concat(dpres, 0)
    d_r = gemm(d_xw2, flatten(c.outputs[3], 2), transA=1)
    d_xw = reshape(d_xw2, [t_len, -1, 4 * hid])
    return [d_xw, d_r, dh_rec, dc_rec][:len(c.inputs)]


register(OpDef("lstm_scan", _infer, (2, 4), kernel=_kernel, lower=_lower, vjp=_vjp,
               attrs={"reverse": 0},
               doc="The LSTM recurrence over [T, N, 4H] gate inputs, saving cells and gates "
                   "for its backprop-through-time VJP (the lstm composite's training form)."))


def lstm_scan(xw: Tensor, r: Tensor, h0: Tensor | None = None, c0: Tensor | None = None,
              reverse: bool = False) -> list[Tensor]:
    """[Y, last h, last c, Hprev, then SAVED for each step] (see the module docstring)."""
    ins = [xw, r, h0, c0]
    while ins[-1] is None:
        ins.pop()
    return xw.b.apply("lstm_scan", ins, reverse=int(reverse))
