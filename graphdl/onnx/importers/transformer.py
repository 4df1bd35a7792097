"""Importers of the ops of transformers and mobile CNNs: Erf, Sin, Cos, Mod, Gelu (opset 20),
HardSigmoid, HardSwish (opset 14), LayerNormalization (opset 17), RMSNormalization
(opset 23) and Attention (opsets 23 to 25). None of them changed meaning between the opsets
that define them."""
from __future__ import annotations

import numpy as np

from ...core.builder import Tensor
from ..importer import NodeCtx
from ...ops.gelu import gelu, hard_sigmoid, hard_swish
from ...ops.layer_norm import layer_norm_stats, rms_norm
from ...ops.mod import mod
from ...ops.elementwise import logical_and, where
from ...ops.shape import reshape, transpose
from ...ops.slice import concat
from ...ops.special import cos, erf, sin
from ...core.types import DType
from . import importer

_UNARY = {"Erf": erf, "Sin": sin, "Cos": cos, "HardSwish": hard_swish}


@importer(*_UNARY)
def _unary(c: NodeCtx) -> Tensor:
    return _UNARY[c.node.op_type](c.x(0))


@importer("Gelu")
def _gelu(c: NodeCtx) -> Tensor:
    return gelu(c.x(0), str(c.attr("approximate", "none")))


@importer("HardSigmoid")
def _hard_sigmoid(c: NodeCtx) -> Tensor:
    return hard_sigmoid(c.x(0), float(c.attr("alpha", 0.2)), float(c.attr("beta", 0.5)))


@importer("Mod")
def _mod(c: NodeCtx) -> Tensor:
    """Mod (opsets 10, 13); PyTorch's attention export computes head counts with it."""
    return mod(c.x(0), c.x(1), bool(c.attr("fmod", 0)))


@importer("LayerNormalization")
def _layer_norm(c: NodeCtx) -> list[Tensor]:
    """Statistics in the input's type (onnx's reference does the same for stash_type=1)."""
    outs = layer_norm_stats(c.x(0), c.x(1), c.opt(2), axis=int(c.attr("axis", -1)),
                            eps=float(c.attr("epsilon", 1e-5)))
    return list(outs[:max(len(c.node.output), 1)])


@importer("RMSNormalization")
def _rms_norm(c: NodeCtx) -> Tensor:
    return rms_norm(c.x(0), c.x(1), axis=int(c.attr("axis", -1)),
                    eps=float(c.attr("epsilon", 1e-5)))


@importer("Attention")
def _attention(c: NodeCtx) -> list[Tensor | None]:
    """ONNX Attention: 3-D inputs split into heads (q_num_heads, kv_num_heads) and merged
    back; past_key/past_value concatenated before k and v (the present outputs), which also
    offsets the causal mask; a mask shorter than the keys padded as masked. Sliding windows
    and nonpad_kv_seqlen (the external cache: per-batch offsets and padding) become a
    structural bool mask combined with the given one."""
    q, k, v = c.x(0), c.x(1), c.x(2)
    three_d = q.type.rank == 3
    if three_d:
        q = _heads(q, int(c.attr("q_num_heads")))
        k = _heads(k, int(c.attr("kv_num_heads")))
        v = _heads(v, int(c.attr("kv_num_heads")))
    offset = 0
    if c.has(4) and c.has(5):
        offset = c.x(4).shape[2]
        if not isinstance(offset, int):
            raise c.fail(f"past_key {c.x(4).type} needs a static length")
        k, v = concat([c.x(4), k], 2), concat([c.x(5), v], 2)
    mask = _padded_mask(c, c.opt(3), k.shape[2])
    causal = bool(c.attr("is_causal", 0))
    window = (int(c.attr("left_window_size", -1)), int(c.attr("right_window_size", -1)))
    if c.has(6) or window != (-1, -1):  # per-batch offsets or windows: a structural mask
        nonpad = c.opt(6)
        off = offset if nonpad is None else reshape(nonpad - q.shape[2], [-1, 1, 1, 1])
        allowed = _structure(c, q.shape[2], k.shape[2], off, causal, window)
        if nonpad is not None:
            pos = c.b.const(np.arange(k.shape[2], dtype=nonpad.dtype.np).reshape(1, 1, 1, -1))
            allowed = logical_and(allowed, pos < reshape(nonpad, [-1, 1, 1, 1]))
        mask, causal = _combine(c, mask, allowed), False
    softcap = float(c.attr("softcap", 0.0))
    mode = int(c.attr("qk_matmul_output_mode", 0))
    y, qk = c.b.apply("attention", [q, k, v, mask], scale=float(c.attr("scale", 0.0)),
                      is_causal=causal, causal_offset=offset, softcap=softcap, qk_mode=mode)
    if three_d:
        y = reshape(transpose(y, [0, 2, 1, 3]), [0, 0, -1])
    return [y, k, v, qk][:max(len(c.node.output), 1)]


def _heads(x: Tensor, heads: int) -> Tensor:
    """(B, S, H * D) -> (B, H, S, D)."""
    return transpose(reshape(x, [0, 0, heads, -1]), [0, 2, 1, 3])


def _padded_mask(c: NodeCtx, mask: Tensor | None, kv_len) -> Tensor | None:
    """ONNX pads a mask shorter than the keys with masked entries (False, or -inf)."""
    if mask is None or mask.shape is None or mask.shape[-1] == kv_len:
        return mask
    short = mask.shape[-1]
    if not all(isinstance(d, int) for d in mask.shape) or not isinstance(kv_len, int):
        raise c.fail(f"attn_mask {mask.type} shorter than the keys needs static dims")
    fill = np.zeros if mask.dtype == DType.bool else _neg_inf
    extra = fill(tuple(mask.shape[:-1]) + (kv_len - short,), mask.dtype.np)
    return concat([mask, c.b.const(extra)], -1)


def _neg_inf(shape: tuple, dtype) -> np.ndarray:
    return np.full(shape, -np.inf, dtype)


def _structure(c: NodeCtx, sq, skv, offset, causal: bool, window: tuple[int, int]) -> Tensor:
    """Which keys each query may see: query i sits at position i + offset (offset an int or
    a per-batch (B, 1, 1, 1) tensor); causal keeps keys at or before it, the window keys at
    most ``left`` before and ``right`` after it (-1: unbounded)."""
    if not isinstance(sq, int) or not isinstance(skv, int):
        raise c.fail("attention windows and nonpad_kv_seqlen need static sequence lengths")
    diff = np.arange(sq).reshape(-1, 1) - np.arange(skv).reshape(1, -1)
    if isinstance(offset, int):
        return c.b.const(_allowed(diff + offset, causal, window))
    d = c.b.const(diff.astype(offset.dtype.np)) + offset
    zero = c.b.const(np.zeros((), offset.dtype.np))
    ok = c.b.const(np.ones((1, 1), bool))
    conds = ([d >= zero] if causal else []) + \
        ([d <= float(window[0])] if window[0] >= 0 else []) + \
        ([(-d) <= float(window[1])] if window[1] >= 0 else [])
    for cond in conds:
        ok = logical_and(ok, cond)
    return ok


def _allowed(diff: np.ndarray, causal: bool, window: tuple[int, int]) -> np.ndarray:
    ok = np.ones(diff.shape, bool)
    if causal:
        ok &= diff >= 0
    if window[0] >= 0:
        ok &= diff <= window[0]
    if window[1] >= 0:
        ok &= -diff <= window[1]
    return ok


def _combine(c: NodeCtx, mask: Tensor | None, allowed: Tensor) -> Tensor:
    """mask restricted to the allowed keys (a bool mask stays bool, an additive one gets
    -inf where not allowed)."""
    if mask is None:
        return allowed
    if mask.dtype == DType.bool:
        return logical_and(mask, allowed)
    return where(allowed, mask, c.b.const(np.asarray(-np.inf, mask.dtype.np)))
