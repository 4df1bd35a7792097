"""``lstm_scan``: an LSTM over a whole sequence as one op whose VJP is backprop through time
written out, so a training step stays small and fast.

The ``lstm`` composite (ops/recurrent.py) hands each direction to this op (without peepholes).
Differentiating the unrolled cell node by node gave ~40 small nodes per time step (a Transpose
per matmul, one MatMul and Add per step for dR, a Sub and Muls per sigmoid); this VJP builds the
backprop through time directly:

- the forward saves, as outputs, the values each step computes anyway (gates, i*g, f*c(t-1),
  tanh(c), h): in ONNX those are the step's own node outputs, no copies;
- per step the backward builds only dc, the four gate gradients as products of those values
  (``d(i*g) * i*g * (1 - i)`` and so on), one Concat and ``dh(t-1) = dpre(t) @ R``;
- ``dW``, ``dR`` and ``dx`` are ONE matrix product each over all steps, ``db`` one sum.

In ONNX each step is one Gemm ``[x(t) | h] [W | R]^T + b`` (x split into steps, [W | R]
concatenated once), then Split, Sigmoid, Tanh, Split, Mul, Mul, Add, Tanh, Mul. The per-step
Concat copies N * (I + H) values, where the input projection of all steps as one Gemm over
[T*N, I] (a skinny product, K = I) split into steps copied N * 4H per step: the realistic LSTM
step in onnxruntime went from 1.10-1.12x to 1.04-1.07x PyTorch eager (``python -m benchmarks
--only realistic``, same-run ratios, before and after). The gradients of the saved outputs
are handled too, so the VJP graph can be differentiated again.

Inputs: ``x`` [T, N, I], ``W`` [4H, I], ``R`` [4H, H] (ONNX's gate blocks i, o, f, c), optional
``b`` [4H] (input and recurrent biases summed), ``h0``, ``c0`` [N, H]; attribute ``reverse``
runs t = T-1 .. 0. Outputs: ``Y`` [T, N, H] (h(t) in time order), the last h and c [N, H],
``Hprev`` [T, N, H] (the h each step started from) and SAVED for each step.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import Call, OpDef, register
from ..core.types import TensorType, dim_mul, dims_equal, shape_str
from .common import need_float, same_dtype
from .linalg import gemm, matmul
from .reduce import reduce_sum
from .shape import flatten, reshape, squeeze, zeros_like
from .slice import concat
from .split import split


#: the values each time step saves for the VJP (no copies: the forward computes them anyway)
SAVED = ("i", "o", "f", "g", "ig", "fc", "c", "tc", "h")
FIXED = 4  # outputs Y, last h, last c, Hprev; then len(SAVED) per step


def _infer(types: list, attrs: dict) -> list[TensorType]:
    x, w, r = types[:3]
    dt = same_dtype(types, "lstm_scan inputs")
    need_float(x, "lstm_scan input x")
    ranks = [None if t.shape is None else len(t.shape) for t in (x, w, r)]
    if ranks != [3, 2, 2]:
        raise ShapeError(f"lstm_scan: x must be [T, N, I], W [4H, I] and R [4H, H], got "
                         f"{', '.join(shape_str(t.shape) for t in (x, w, r))}")
    t_len, n, hid = x.shape[0], x.shape[1], r.shape[1]
    if not isinstance(t_len, int) or not isinstance(hid, int) or w.shape[0] != 4 * hid \
            or r.shape[0] != 4 * hid or dims_equal(w.shape[1], x.shape[2]) is False:
        raise ShapeError(f"lstm_scan: needs a static T and H with x [T, N, I], W [4H, I], "
                         f"R [4H, H], got {', '.join(shape_str(t.shape) for t in (x, w, r))}")
    seq, state = TensorType(dt, (t_len, n, hid)), TensorType(dt, (n, hid))
    return [seq, state, state, seq] + [state] * (len(SAVED) * t_len)


def _order(t_len: int, reverse: int) -> range:
    return range(t_len - 1, -1, -1) if reverse else range(t_len)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))``, the sigmoid op's kernel form (exp overflow gives the limit 0)."""
    with np.errstate(over="ignore"):
        e = np.exp(np.negative(x))
    e += x.dtype.type(1)
    return np.reciprocal(e, out=e)


def _kernel(x: np.ndarray, w: np.ndarray, r: np.ndarray, b: np.ndarray | None = None,
            h0: np.ndarray | None = None, c0: np.ndarray | None = None, *,
            reverse: int) -> tuple[np.ndarray, ...]:
    t_len, n, hid = x.shape[0], x.shape[1], r.shape[1]
    xw = x @ w.T
    if b is not None:
        xw += b
    y, h_prev, cells, tcs, igs, fcs = np.empty((6, t_len, n, hid), xw.dtype)
    sig, cand = np.empty((t_len, n, 3 * hid), xw.dtype), np.empty((t_len, n, hid), xw.dtype)
    r_t = np.ascontiguousarray(r.T)
    h, c = h0, c0
    for t in _order(t_len, reverse):
        h_prev[t] = 0 if h is None else h
        pre = xw[t] if h is None else xw[t] + h @ r_t
        sig[t] = _sigmoid(pre[:, :3 * hid])
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
    """Per step one Gemm ``[x(t) | h] [W | R]^T + b`` (``x(t) W^T + b`` while h is still
    zero), Split, Sigmoid, Tanh, Split, Mul, Mul, Add, Tanh, Mul; the saved values are those
    nodes' own outputs."""
    ins = list(node.inputs) + [None] * (6 - len(node.inputs))
    x, w, r, bias, h, c = ins
    t_len, hid = x.type.shape[0], r.type.shape[1]
    xs = _split_steps(ctx, x, t_len)
    wr, b = None, ([] if bias is None else [bias])
    gate_sizes = ctx.const(np.asarray([3 * hid, hid], np.int64))
    thirds = ctx.const(np.asarray([hid] * 3, np.int64))
    hs, prev = [None] * t_len, [None] * t_len
    for t in _order(t_len, node.attrs["reverse"]):
        out = dict(zip(SAVED, node.outputs[FIXED + len(SAVED) * t:]))
        prev[t] = h
        if h is None:
            pre = ctx.emit("Gemm", [xs[t], w, *b], transB=1)[0]
        else:
            wr = wr or ctx.emit("Concat", [w, r], axis=1)[0]  # [4H, I + H], once
            xh = ctx.emit("Concat", [xs[t], h], axis=1)[0]
            pre = ctx.emit("Gemm", [xh, wr, *b], transB=1)[0]
        s_pre, g_pre = ctx.emit("Split", [pre, gate_sizes], 2, axis=1)
        s = ctx.emit("Sigmoid", [s_pre])[0]
        g = ctx.emit("Tanh", [g_pre], [out["g"]])[0]
        i, o, f = ctx.emit("Split", [s, thirds], [out["i"], out["o"], out["f"]], axis=1)
        ig = ctx.emit("Mul", [i, g], [out["ig"]])[0]
        if c is None:  # c(t-1) = 0: f * c(t-1) is zeros, c = i * g
            ctx.emit("Mul", [f, ctx.const(np.zeros((), x.type.dtype.np))], [out["fc"]])
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
            zero = ctx.emit("Mul", [hs[0], ctx.const(np.zeros((), x.type.dtype.np))])[0]
            prev = [zero if p is None else p for p in prev]
        _stack(ctx, prev, prev_out, t_len, hid)
    for last, out in ((h, h_out), (c, c_out)):
        if out.name not in ctx.unread:  # onnxruntime would run a copy nothing reads
            ctx.emit("Identity", [last], [out])


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
    """dx, dW, dR, db, dh0, dc0 from the gradients of every output (see the module
    docstring)."""
    x, w, r, bias, h0, c0 = (list(c.inputs) + [None] * 6)[:6]
    t_len, rev = x.shape[0], c.attrs["reverse"]
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
    d_pre = concat(dpres, 0)  # [T*N, 4H]
    d_x = reshape(matmul(d_pre, w), [t_len, -1, x.shape[2]])
    d_w = gemm(d_pre, flatten(x, 2), transA=1)
    d_r = gemm(d_pre, flatten(c.outputs[3], 2), transA=1)
    d_b = None if bias is None else reduce_sum(d_pre, 0)
    return [d_x, d_w, d_r, d_b, dh_rec, dc_rec][:len(c.inputs)]


def _flops(n: Any) -> Any:
    """One LSTM direction (x [T, N, I], W [4H, I], R [4H, H]): the lstm op's count per
    direction, T * N * (8H(I + H) + (3 or 2)*4H + 5H)."""
    x, r = n.inputs[0].type.shape, n.inputs[2].type.shape
    if x is None or r is None or not isinstance(r[1], int) or not isinstance(x[2], int):
        return None
    hid = r[1]
    has_bias = len(n.inputs) > 3 and n.inputs[3] is not None
    per_item = 8 * hid * (x[2] + hid) + (3 if has_bias else 2) * 4 * hid + 5 * hid
    return dim_mul(dim_mul(x[0], x[1]), per_item)


register(OpDef("lstm_scan", _infer, (3, 6), kernel=_kernel, lower=_lower, vjp=_vjp, flops=_flops,
               attrs={"reverse": 0},
               doc="One LSTM direction over a sequence, saving each step's gates for its "
                   "backprop-through-time VJP (the lstm composite's decomposition)."))


def lstm_scan(x: Tensor, w: Tensor, r: Tensor, b: Tensor | None = None,
              h0: Tensor | None = None, c0: Tensor | None = None,
              reverse: bool = False) -> list[Tensor]:
    """[Y, last h, last c, Hprev, then SAVED for each step] (see the module docstring)."""
    ins = [x, w, r, b, h0, c0]
    while ins[-1] is None:
        ins.pop()
    return x.b.apply("lstm_scan", ins, reverse=int(reverse))
