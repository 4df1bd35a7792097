"""Matrix products: batched, broadcasting matmul and ONNX Gemm."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.builder import Tensor
from ..core.errors import ShapeError
from ..core.registry import Call, OpDef, onnx_op, register
from ..core.types import TensorType, broadcast_shapes, dims_equal, dim_str, shape_str
from . import epilogue
from .common import WIDEN_SMALL, need_float, same_dtype, unbroadcast
from .shape import flatten, squeeze, transpose, unsqueeze


def _matmul_infer(types: list, attrs: dict) -> list[TensorType]:
    a, b = types
    dt = same_dtype(types)
    if a.shape is None or b.shape is None:
        return [TensorType(dt, None)]
    if len(a.shape) == 0 or len(b.shape) == 0:
        raise ShapeError("matmul needs inputs of rank >= 1")
    sa = (1,) + a.shape if len(a.shape) == 1 else a.shape
    sb = b.shape + (1,) if len(b.shape) == 1 else b.shape
    if dims_equal(sa[-1], sb[-2]) is False:
        raise ShapeError(f"matmul: inner dims differ: {shape_str(a.shape)} @ {shape_str(b.shape)} "
                         f"({dim_str(sa[-1])} != {dim_str(sb[-2])})")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    out = tuple(batch) + (sa[-2], sb[-1])
    if len(a.shape) == 1:
        out = out[:-2] + out[-1:]
    if len(b.shape) == 1:
        out = out[:-1]
    return [TensorType(dt, out)]


def _swap(x: Tensor) -> Tensor:
    r = x.type.rank
    return transpose(x, tuple(range(r - 2)) + (r - 1, r - 2))


def _matmul_vjp(b, c: Call, gys):
    """dA = G @ B^T, dB = A^T @ G, with 1-D operands promoted and batch dims unbroadcast."""
    (g,), (x, y) = gys, c.inputs
    x2 = unsqueeze(x, (0,)) if x.type.rank == 1 else x
    y2 = unsqueeze(y, (1,)) if y.type.rank == 1 else y
    if x.type.rank == 1:
        g = unsqueeze(g, (g.type.rank - 1,))
    if y.type.rank == 1:
        g = unsqueeze(g, (g.type.rank,))
    gx = unbroadcast(matmul(g, _swap(y2)), x2.shape)
    if y.type.rank == 2 and x.type.rank > 2:  # a weight shared by every batch item
        gy = _shared_weight_grad(x, g)
    else:
        gy = unbroadcast(matmul(_swap(x2), g), y2.shape)
    gx = squeeze(gx, (0,)) if x.type.rank == 1 else gx
    gy = squeeze(gy, (1,)) if y.type.rank == 1 else gy
    return [gx, gy]


def _shared_weight_grad(x: Tensor, g: Tensor) -> Tensor:
    """dW of x [..., K] @ W [K, F] as ONE product over every batch row, flatten(x)^T @
    flatten(g) (a Gemm with transA): the batched x^T @ g would write a [..., K, F] product per
    batch item for a ReduceSum to add up. The transformer entry of ``python -m benchmarks
    --only realistic`` went from 0.78x to 0.65x PyTorch eager's step time in onnxruntime."""
    r = x.type.rank
    return gemm(flatten(x, r - 1), flatten(g, r - 1), transA=1)


def _matmul_inline(w: Any, n: Any, args: list, target: str, donated: list) -> bool:
    """In a compiled plan, two 2-D operands: the NumPy call itself, no wrapper."""
    if [v.type.rank for v in n.inputs] != [2, 2]:
        return False
    w.emit(n, f"{target} = {w.bind('_matmul', np.matmul)}({args[0]}, {args[1]})")
    return True


def _matmul_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy.matmul; a contiguous stack [..., K] times one matrix [K, F] as a single product
    over all its rows (numpy's matmul makes one product per stacked matrix): 0.79x numpy's time
    for [32, 32, 128] @ [128, 512], a transformer's feed-forward layer
    (``python benchmarks/bench_interp_kernels.py``)."""
    if b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous and a.shape[-1]:
        return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + (b.shape[1],))
    return np.asarray(np.matmul(a, b))


register(OpDef("matmul", _matmul_infer, (2, 2), kernel=_matmul_kernel,
               slots={0: "weight", 1: "weight"},
               lower=onnx_op("MatMul"), vjp=_matmul_vjp, fresh=True, widen=WIDEN_SMALL,
               inline=_matmul_inline,
               doc="numpy.matmul semantics (ONNX MatMul)."))


def matmul(a: Tensor, b: Any) -> Tensor:
    return a.binary("matmul", b)


# -- Gemm --------------------------------------------------------------------------------------


def _gemm_infer(types: list, attrs: dict) -> list[TensorType]:
    a, b = types[0], types[1]
    dt = same_dtype(types)
    need_float(a, "gemm input A")
    epilogue.check(attrs["activation"], "gemm")
    for t, n in ((a, "A"), (b, "B")):
        if t.shape is not None and len(t.shape) != 2:
            raise ShapeError(f"gemm input {n} must be 2-D, got {shape_str(t.shape)}")
    if a.shape is None or b.shape is None:
        return [TensorType(dt, None)]
    m, k = a.shape[::-1] if attrs["transA"] else a.shape
    k2, n = b.shape[::-1] if attrs["transB"] else b.shape
    if dims_equal(k, k2) is False:
        raise ShapeError(f"gemm: inner dims differ: A {shape_str(a.shape)} (transA="
                         f"{attrs['transA']}), B {shape_str(b.shape)} (transB={attrs['transB']})")
    if len(types) > 2 and types[2] is not None:
        c = types[2]
        out = broadcast_shapes(c.shape, (m, n))
        if out is not None and len(c.shape or ()) <= 2 and any(
                dims_equal(x, y) is False for x, y in zip(out, (m, n))):
            raise ShapeError(f"gemm: C {shape_str(c.shape)} does not broadcast to [{m},{n}]")
    return [TensorType(dt, (m, n))]


def _gemm_kernel(a, b, c=None, *, alpha, beta, transA, transB, activation=None):
    a = a.T if transA else a
    b = b.T if transB else b
    y = np.matmul(a, b)  # a fresh array: scale, add the bias and activate in place
    if alpha != 1.0:
        y *= a.dtype.type(alpha)
    if c is not None:
        y += c if beta == 1.0 else c * a.dtype.type(beta)
    return epilogue.apply(y, activation)


def _gemm_lower(ctx: Any, node: Any) -> None:
    """-> ONNX Gemm, then the activation's op when one is fused."""
    at = {k: v for k, v in node.attrs.items() if k != "activation"}
    epilogue.lower(ctx, node, lambda outs: ctx.emit("Gemm", node.inputs, outs, **at))


def _gemm_vjp(b, c: Call, gys):
    """With A' = op(A), B' = op(B): dA' = alpha G B'^T, dB' = alpha A'^T G, dC = beta G, where
    G is the gradient before the fused activation (if any)."""
    g = epilogue.pre_activation_grad(gys[0], c.outputs[0], c.attrs["activation"])
    (x, y), at = c.inputs[:2], c.attrs
    ta, tb, alpha = int(at["transA"]), int(at["transB"]), at["alpha"]
    gx = gemm(y, g, alpha=alpha, transA=tb, transB=1) if ta else \
        gemm(g, y, alpha=alpha, transB=1 - tb)
    gy = gemm(g, x, alpha=alpha, transA=1, transB=ta) if tb else \
        gemm(x, g, alpha=alpha, transA=1 - ta)
    gc = None
    if len(c.inputs) > 2 and c.inputs[2] is not None:
        gb = g if at["beta"] == 1.0 else g * at["beta"]
        gc = unbroadcast(gb, c.inputs[2].shape)
    return [gx, gy, gc][:len(c.inputs)]


def _gemm_inline(w: Any, n: Any, args: list, target: str, donated: list) -> bool:
    """In a compiled plan (alpha = beta = 1): one matmul (transposes as views), the bias added
    and the fused activation applied in place."""
    if n.attrs["alpha"] != 1.0 or n.attrs["beta"] != 1.0:
        return False
    a = args[0] + (".T" if n.attrs["transA"] else "")
    b = args[1] + (".T" if n.attrs["transB"] else "")
    w.emit(n, f"{target} = {w.bind('_matmul', np.matmul)}({a}, {b})")
    if len(args) > 2 and args[2] != "None":
        w.emit(n, f"{w.bind('_add', np.add)}({target}, {args[2]}, out={target})")
    act = n.attrs.get("activation")
    if act is not None:
        w.emit(n, f"{w.bind('_' + act, epilogue.kernel(act))}({target})")
    return True


register(OpDef("gemm", _gemm_infer, (2, 3), kernel=_gemm_kernel, lower=_gemm_lower, fresh=True,
               slots={0: "weight", 1: "weight", 2: "bias"},
               inline=_gemm_inline,
               vjp=_gemm_vjp, attrs={"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0,
                                     "activation": None},
               doc="ONNX Gemm: alpha * op(A) @ op(B) + beta * C, then an optional fused "
                   "activation (ops/epilogue.py)."))


def gemm(a: Tensor, b: Tensor, c: Tensor | None = None, alpha: float = 1.0, beta: float = 1.0,
         transA: int = 0, transB: int = 0) -> Tensor:  # noqa: N803 - ONNX names
    """``alpha * op(a) @ op(b) + beta * c`` as ONNX Gemm defines it."""
    ins = [a, b] if c is None else [a, b, c]
    return a.b.apply1("gemm", ins, alpha=float(alpha), beta=float(beta), transA=int(transA),
                      transB=int(transB))
