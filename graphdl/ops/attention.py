"""Scaled dot-product attention (ONNX Attention, opset 23) on 4-D (batch, heads, seq, head_dim)
tensors: ``softmax(q k^T * scale + bias) v``, with grouped-query heads (k and v with fewer
heads, each repeated), a boolean or additive mask, a causal mask aligned bottom-right
(``causal_offset`` earlier keys, e.g. a past cache, are visible to every query), softcap, and
ONNX's optional second output (``qk_mode``: 0/1 the scaled scores, 2 with the bias, 3 the
probabilities).

A row whose every key is masked attends to nothing (its output is 0), as ONNX defines. The
op is a composite: autodiff differentiates the decomposition, in which masked scores are the
dtype's lowest finite number rather than -inf, so no gradient is ever NaN (a softmax over
-inf rows is NaN, and NaN * 0 stays NaN); export lowers to ONNX Attention from opset 23 where
onnxruntime computes the same thing."""
from __future__ import annotations

import math

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, ShapeError
from ..core.registry import OpDef, register
from ..core.types import DType, TensorType, dims_equal, shape_str
from .activations import softmax, tanh
from .common import need_float, same_dtype
from .elementwise import cast, maximum, where
from .reduce import reduce_max
from .positions import trilu
from .shape import constant_of_shape, expand, reshape, shape, transpose, unsqueeze
from .slice import concat

ATTENTION_OPSET = 23
_ATTRS = {"scale": 0.0, "is_causal": False, "causal_offset": 0, "softcap": 0.0, "qk_mode": 0}


def _attention_infer(types: list, attrs: dict) -> list[TensorType]:
    q, k, v = types[:3]
    for t in (q, k, v):
        need_float(t, "attention q, k and v")
    dt = same_dtype([q, k, v], "attention q, k and v")
    mask = types[3] if len(types) > 3 else None
    if mask is not None and mask.dtype not in (dt, DType.bool):
        raise DTypeError(f"attention mask must be bool or {dt.name}, got {mask.dtype.name}")
    if any(t.shape is None for t in (q, k, v)):
        return [TensorType(dt, None), TensorType(dt, None)]
    if not len(q.shape) == len(k.shape) == len(v.shape) == 4:
        raise ShapeError(f"attention needs 4-D (batch, heads, seq, dim) q, k, v, got "
                         f"{shape_str(q.shape)}, {shape_str(k.shape)}, {shape_str(v.shape)}")
    hq, hk = q.shape[1], k.shape[1]
    if isinstance(hq, int) and isinstance(hk, int) and hq % hk:
        raise ShapeError(f"attention: {hq} query heads are not a multiple of {hk} key heads")
    if dims_equal(q.shape[3], k.shape[3]) is False or dims_equal(k.shape[2], v.shape[2]) is False:
        raise ShapeError(f"attention: q {shape_str(q.shape)}, k {shape_str(k.shape)} and v "
                         f"{shape_str(v.shape)} do not fit (q, k head dims; k, v lengths)")
    y = (q.shape[0], hq, q.shape[2], v.shape[3])
    return [TensorType(dt, y), TensorType(dt, (q.shape[0], hq, q.shape[2], k.shape[2]))]


def _scale(attrs: dict, head_dim) -> float:
    return attrs["scale"] or 1.0 / math.sqrt(head_dim)


def _causal_allowed(sq: int, skv: int, offset: int) -> np.ndarray:
    return np.arange(skv)[None, :] <= np.arange(sq)[:, None] + offset


def _attention_kernel(q, k, v, mask=None, **a) -> tuple[np.ndarray, np.ndarray]:
    t = q.dtype.type
    reps = q.shape[1] // k.shape[1]
    if reps > 1:
        k, v = np.repeat(k, reps, axis=1), np.repeat(v, reps, axis=1)
    root = t(math.sqrt(_scale(a, q.shape[3])))  # on q and on k, as ONNX's reference does
    qk = (q * root) @ np.swapaxes(k * root, -1, -2)
    if a["softcap"] > 0:
        qk = t(a["softcap"]) * np.tanh(qk / t(a["softcap"]))
    bias = np.zeros(qk.shape[-2:], q.dtype)
    if mask is not None:
        bias = bias + (np.where(mask, t(0), t(-np.inf)) if mask.dtype == bool else mask)
    if a["is_causal"]:
        allowed = _causal_allowed(qk.shape[-2], qk.shape[-1], a["causal_offset"])
        bias = bias + np.where(allowed, t(0), t(-np.inf))
    scores = qk + bias
    dead = np.isneginf(np.max(bias, axis=-1, keepdims=True))
    top = np.max(np.where(dead, t(0), scores), axis=-1, keepdims=True)
    e = np.exp(np.where(dead, t(0), scores - top))
    p = np.where(dead, t(0), e / np.sum(e, axis=-1, keepdims=True))
    y = p @ v
    extra = {0: qk, 1: qk, 2: scores, 3: p}[a["qk_mode"]]
    return y.astype(q.dtype), np.broadcast_to(extra, qk.shape).astype(q.dtype)


def _repeat_heads(x: Tensor, reps: int) -> Tensor:
    """(B, H, S, D) -> (B, H * reps, S, D), each head repeated ``reps`` times in place."""
    b_, h, s, d = x.shape
    shape = x.b.const(np.asarray([1, 1, reps, 1, 1], np.int64))
    y = expand(unsqueeze(x, [2]), shape)
    return reshape(y, [0, h * reps, -1, d])


def _attention_decompose(b, ins: list, a: dict) -> list[Tensor]:
    q, k, v = ins[:3]
    mask = ins[3] if len(ins) > 3 else None
    dt = q.dtype.np
    reps = q.shape[1] // k.shape[1]
    if reps > 1:
        k, v = _repeat_heads(k, reps), _repeat_heads(v, reps)
    qk = (q * _scale(a, q.shape[3])) @ transpose(k, [0, 1, 3, 2])
    if a["softcap"] > 0:
        qk = tanh(qk * (1.0 / a["softcap"])) * a["softcap"]
    lowest = b.const(np.asarray(np.finfo(dt).min, dt))
    bias = None
    if mask is not None:
        bias = where(mask, b.const(np.zeros((), dt)), lowest) if mask.dtype == DType.bool \
            else maximum(mask, lowest)
    if a["is_causal"]:
        causal = _causal_bias(b, q, k, a["causal_offset"], lowest)
        bias = causal if bias is None else maximum(bias + causal, lowest)
    scores = qk if bias is None else qk + bias
    p = softmax(scores, -1)
    if bias is not None:  # rows with every key masked attend to nothing
        live = cast(reduce_max(bias, [-1], keepdims=True) > float(np.finfo(dt).min), q.dtype)
        p = p * live
    extra = {0: qk, 1: qk, 2: scores, 3: p}[a["qk_mode"]]
    return [p @ v, extra]


def _causal_bias(b, q: Tensor, k: Tensor, offset: int, lowest: Tensor) -> Tensor:
    """0 where key j <= query i + offset, else the lowest finite number: a constant for
    static lengths, else the lower triangle (trilu) of ones shaped in the graph."""
    dt = q.dtype.np
    sq, skv = q.shape[2], k.shape[2]
    if isinstance(sq, int) and isinstance(skv, int):
        allowed = _causal_allowed(sq, skv, offset)
        return b.const(np.where(allowed, 0, np.finfo(dt).min).astype(dt))
    ones = constant_of_shape(concat([shape(q, 2, 3), shape(k, 2, 3)], 0), 1.0, q.dtype)
    return where(trilu(ones, offset, upper=False) > 0.5, b.const(np.zeros((), dt)), lowest)


def _attention_lower(ctx, node) -> None:
    """ONNX Attention from opset 23 for the output alone and a causal mask without offset;
    else the decomposition."""
    a = node.attrs
    if ctx.opset < ATTENTION_OPSET or node.outputs[1].name not in ctx.unread or \
            (a["is_causal"] and a["causal_offset"]):
        ctx.emit_decomposition(node)
        return
    ins = list(node.inputs)
    while ins[-1] is None:
        ins.pop()
    ctx.emit("Attention", ins, [node.outputs[0]], scale=a["scale"] or None,
             is_causal=int(a["is_causal"]), softcap=a["softcap"] or None)


register(OpDef("attention", _attention_infer, (3, 4), kernel=_attention_kernel,
               lower=_attention_lower, decompose=_attention_decompose, attrs=dict(_ATTRS),
               traits={"composite"},
               doc="softmax(q k^T * scale + mask) v over 4-D (batch, heads, seq, dim) tensors."))


def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, *,
              scale: float | None = None, is_causal: bool = False, causal_offset: int = 0,
              softcap: float = 0.0) -> Tensor:
    """Scaled dot-product attention over (batch, heads, seq, dim) tensors; ``mask`` is bool
    (True attends) or additive, broadcast to (batch, heads, q_len, kv_len)."""
    return q.b.apply("attention", [q, k, v, mask], scale=float(scale or 0.0),
                     is_causal=bool(is_causal), causal_offset=int(causal_offset),
                     softcap=float(softcap))[0]
