"""Conv gradient formulations in stock onnxruntime (CPU, 1 thread), per layer shape of the CIFAR
ResNet (batch 32): the measurements behind the cost model of graphdl/ops/conv_grad_lowering.py.

Weight gradient dW [O, C, K, K] of a conv with input x [N, C, H, W] and output gradient
dY [N, O, P, Q]:

- ``conv``: a Conv of the transposed input with dY as the kernel (graphdl's old lowering);
- ``taps``: x padded and transposed once to [C, N, Hp, Wp], one strided Slice per kernel offset
  reshaped to [C, N*P*Q] and one MatMul with dY as [N*P*Q, O] per offset, concatenated;
- ``nhwc``: the same per offset, but x transposed to [N, Hp, Wp, C] (each slice copies runs of
  W*C contiguous values, not W) and dY^T [O, N*P*Q] on the left of each MatMul;
- ``im2col``: the same slices concatenated into [K*K*C, N*P*Q] and one MatMul;
- ``batched``: slices of x (not transposed) concatenated into [N, K*K*C, P*Q], one batched
  MatMul with dY [N, O, P*Q] and a ReduceSum over the batch (no Transpose of x at all);
- ``rows`` (stride 1): only K slices of x, one per kernel row, [C, N, P, Wp] each (padded
  width), stacked to [K*C, N*P*Wp]; dY^T padded once per kernel column (shifted by the column
  offset) and stacked to [K*O, N*P*Wp]; one Gemm (transB) gives every tap; ``rows_nhwc``: the
  row slices of the channels-last input, one MatMul each with the stacked shifted dY^T. Both
  read x K times instead of K*K, but their products run over the padded width and came out
  5-30% slower than ``nhwc`` (graphdl's ``taps`` plan) on every stride-1 layer.

- ``onehot``: the columns [N, C*K*K, P*Q] by one Conv of x viewed as [N*C, 1, H, W] with a
  constant one-hot kernel [K*K, 1, K, K] (onnxruntime's own im2col), then a batched MatMul
  with dY^T [N, P*Q, O] and a ReduceSum over the batch: six nodes where ``nhwc`` has about
  thirty, but on a 2-core Xeon it was slower than ``nhwc`` on every layer except the
  stride-2 3x3 one (16 -> 32: 1.80 against 2.03 ms; 16 -> 16 at 32x32: 5.45 against 4.63).

Input gradient dX [N, C, H, W]: ``convtranspose`` (ONNX ConvTranspose) against, at stride 1,
``conv``: a Conv of dY with the flipped, in/out-swapped weight.

Each formulation is checked against the first before timing; the forward Conv of the layer is
the yardstick (same multiply-adds).

    python benchmarks/bench_conv_grads.py [--reps 20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

#: (C, O, H, K, stride): the distinct conv layers of the CIFAR ResNet (pad K // 2)
SHAPES = [(3, 16, 32, 3, 1), (16, 16, 32, 3, 1), (16, 32, 32, 3, 2), (16, 32, 32, 1, 2),
          (32, 32, 16, 3, 1), (32, 64, 16, 3, 2), (32, 64, 16, 1, 2), (64, 64, 8, 3, 1)]
N = 32


class Net:
    """A tiny ONNX graph builder: nodes, int64 constants, a session at one thread."""

    def __init__(self):
        self.nodes, self.inits, self.k = [], [], 0

    def const(self, v) -> str:
        self.k += 1
        name = f"c{self.k}"
        self.inits.append(onnx.numpy_helper.from_array(np.asarray(v, np.int64), name))
        return name

    def op(self, kind: str, ins: list[str], **attrs) -> str:
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(kind, ins, [out], **attrs))
        return out

    def session(self, inputs: dict[str, tuple], out: str):
        vi = [helper.make_tensor_value_info(k, TensorProto.FLOAT, s) for k, s in inputs.items()]
        self.nodes.append(helper.make_node("Identity", [out], ["out"]))
        g = helper.make_graph(self.nodes, "g", vi,
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        return ort.InferenceSession(m.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])


def _slices(n: Net, x: str, k: int, s: int, p_out: int, axes=(2, 3)) -> list[str]:
    ax, st = n.const(list(axes)), n.const([s, s])
    return [n.op("Slice", [x, n.const([a, b]), n.const([a + s * (p_out - 1) + 1,
                                                       b + s * (p_out - 1) + 1]), ax, st])
            for a in range(k) for b in range(k)]


def wgrad(kind: str, c: int, o: int, h: int, k: int, s: int):
    p = (h + 2 * (k // 2) - k) // s + 1
    n = Net()
    pad = k // 2
    if kind == "nhwc":
        xt = n.op("Transpose", ["x"], perm=[0, 2, 3, 1])
        x = n.op("Pad", [xt, n.const([0, pad, pad, 0, 0, pad, pad, 0])]) if pad else xt
        gt = n.op("Reshape", [n.op("Transpose", ["dy"], perm=[1, 0, 2, 3]), n.const([o, -1])])
        cols = _slices(n, x, k, s, p, axes=(1, 2))
        mats = [n.op("MatMul", [gt, n.op("Reshape", [cs, n.const([-1, c])])]) for cs in cols]
        cat = n.op("Concat", mats, axis=1) if len(mats) > 1 else mats[0]
        out = n.op("Transpose", [n.op("Reshape", [cat, n.const([o, k, k, c])])],
                   perm=[0, 3, 1, 2])
    elif kind == "rows":
        wp = h + 2 * pad
        xt = n.op("Transpose", ["x"], perm=[1, 0, 2, 3])
        xp = n.op("Pad", [xt, n.const([0, 0, pad, pad, 0, 0, pad, pad])]) if pad else xt
        xs = [n.op("Slice", [xp, n.const([i]), n.const([i + p]), n.const([2])])
              for i in range(k)]
        xc = n.op("Concat", xs, axis=0) if k > 1 else xs[0]
        xc = n.op("Reshape", [xc, n.const([k * c, -1])])
        gt = n.op("Transpose", ["dy"], perm=[1, 0, 2, 3])
        ds = [n.op("Pad", [gt, n.const([0, 0, 0, j, 0, 0, 0, wp - p - j])]) if wp > p else gt
              for j in range(k)]
        dc = n.op("Concat", ds, axis=0) if k > 1 else ds[0]
        dc = n.op("Reshape", [dc, n.const([k * o, -1])])
        g = n.op("Gemm", [dc, xc], transB=1)
        out = n.op("Transpose", [n.op("Reshape", [g, n.const([k, o, k, c])])],
                   perm=[1, 3, 2, 0])
    elif kind == "rows_nhwc":
        wp = h + 2 * pad
        xt = n.op("Transpose", ["x"], perm=[0, 2, 3, 1])
        xp = n.op("Pad", [xt, n.const([0, pad, pad, 0, 0, pad, pad, 0])]) if pad else xt
        xs = [n.op("Reshape", [n.op("Slice", [xp, n.const([i]), n.const([i + p]), n.const([1])]),
                               n.const([-1, c])]) for i in range(k)]
        gt = n.op("Transpose", ["dy"], perm=[1, 0, 2, 3])
        ds = [n.op("Pad", [gt, n.const([0, 0, 0, j, 0, 0, 0, wp - p - j])]) if wp > p else gt
              for j in range(k)]
        dc = n.op("Concat", ds, axis=0) if k > 1 else ds[0]
        dc = n.op("Reshape", [dc, n.const([k * o, -1])])
        mats = [n.op("MatMul", [dc, xi]) for xi in xs]
        cat = n.op("Concat", mats, axis=0) if k > 1 else mats[0]
        out = n.op("Transpose", [n.op("Reshape", [cat, n.const([k, k, o, c])])],
                   perm=[2, 3, 0, 1])
    elif kind == "onehot":
        eye = np.eye(k * k, dtype=np.float32).reshape(k * k, 1, k, k)
        n.inits.append(onnx.numpy_helper.from_array(eye, "eye"))
        xs = n.op("Reshape", ["x", n.const([N * c, 1, h, h])])
        cols = n.op("Conv", [xs, "eye"], strides=[s, s], pads=[pad] * 4)
        cols = n.op("Reshape", [cols, n.const([N, c * k * k, p * p])])
        gt = n.op("Transpose", [n.op("Reshape", ["dy", n.const([N, o, p * p])])], perm=[0, 2, 1])
        dw = n.op("ReduceSum", [n.op("MatMul", [cols, gt]), n.const([0])], keepdims=0)
        out = n.op("Reshape", [n.op("Transpose", [dw]), n.const([o, c, k, k])])
    elif kind == "conv":
        xt = n.op("Transpose", ["x"], perm=[1, 0, 2, 3])
        gt = n.op("Transpose", ["dy"], perm=[1, 0, 2, 3])
        full = n.op("Conv", [xt, gt], dilations=[s, s], pads=[pad] * 4)
        cut = n.op("Slice", [full, n.const([0, 0]), n.const([k, k]), n.const([2, 3])])
        out = n.op("Transpose", [cut], perm=[1, 0, 2, 3])
    else:
        x = n.op("Pad", ["x", n.const([0, 0, pad, pad, 0, 0, pad, pad])]) if pad else "x"
        if kind == "batched":
            cols = _slices(n, x, k, s, p)
            cat = n.op("Concat", cols, axis=1) if len(cols) > 1 else cols[0]
            cat = n.op("Reshape", [cat, n.const([N, k * k * c, p * p])])
            g = n.op("Reshape", ["dy", n.const([N, o, p * p])])
            ct = n.op("Transpose", [cat], perm=[0, 2, 1])
            dw = n.op("ReduceSum", [n.op("MatMul", [g, ct]), n.const([0])], keepdims=0)
            out = n.op("Transpose", [n.op("Reshape", [dw, n.const([o, k, k, c])])],
                       perm=[0, 3, 1, 2])
        else:
            xt = n.op("Transpose", [x], perm=[1, 0, 2, 3])
            g = n.op("Reshape", [n.op("Transpose", ["dy"], perm=[0, 2, 3, 1]),
                                 n.const([N * p * p, o])])
            cols = _slices(n, xt, k, s, p)
            if kind == "taps":
                mats = [n.op("MatMul", [n.op("Reshape", [cs, n.const([c, -1])]), g])
                        for cs in cols]
                cat = n.op("Concat", mats, axis=0) if len(mats) > 1 else mats[0]
            else:
                cat = n.op("Concat", cols, axis=0) if len(cols) > 1 else cols[0]
                cat = n.op("MatMul", [n.op("Reshape", [cat, n.const([k * k * c, -1])]), g])
            out = n.op("Transpose", [n.op("Reshape", [cat, n.const([k, k, c, o])])],
                       perm=[3, 2, 0, 1])
    return n.session({"x": (N, c, h, h), "dy": (N, o, p, p)}, out)


def xgrad(kind: str, c: int, o: int, h: int, k: int, s: int):
    p = (h + 2 * (k // 2) - k) // s + 1
    n, pad = Net(), k // 2
    if kind == "convtranspose":
        extra = h - ((p - 1) * s - 2 * pad + k)
        out = n.op("ConvTranspose", ["dy", "w"], strides=[s, s], pads=[pad] * 4,
                   output_padding=[extra, extra])
    else:
        wt = n.op("Transpose", ["w"], perm=[1, 0, 2, 3])
        flip = n.op("Slice", [wt, n.const([-1, -1]), n.const([-2 ** 62] * 2), n.const([2, 3]),
                              n.const([-1, -1])])
        out = n.op("Conv", ["dy", flip], pads=[k - 1 - pad] * 4)
    return n.session({"dy": (N, o, p, p), "w": (o, c, k, k)}, out)


def forward(c, o, h, k, s):
    n = Net()
    out = n.op("Conv", ["x", "w"], strides=[s, s], pads=[k // 2] * 4)
    return n.session({"x": (N, c, h, h), "w": (o, c, k, k)}, out)


def _ms(sess, feeds, reps) -> float:
    sess.run(None, feeds)
    best = np.inf
    for _ in range(3):
        t0 = time.thread_time()
        for _ in range(reps):
            sess.run(None, feeds)
        best = min(best, (time.thread_time() - t0) / reps)
    return best * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    for c, o, h, k, s in SHAPES:
        p = (h + 2 * (k // 2) - k) // s + 1
        x = rng.standard_normal((N, c, h, h)).astype(np.float32)
        dy = rng.standard_normal((N, o, p, p)).astype(np.float32)
        w = rng.standard_normal((o, c, k, k)).astype(np.float32)
        row = {"fwd": _ms(forward(c, o, h, k, s), {"x": x, "w": w}, args.reps)}
        ref = None
        stride_1 = ("rows", "rows_nhwc") if s == 1 else ()
        for kind in ("conv", "taps", "im2col", "batched", "nhwc", "onehot") + stride_1:
            sess = wgrad(kind, c, o, h, k, s)
            got = sess.run(None, {"x": x, "dy": dy})[0]
            ref = got if ref is None else ref
            assert np.allclose(got, ref, rtol=1e-3, atol=1e-2), kind
            row["w_" + kind] = _ms(sess, {"x": x, "dy": dy}, args.reps)
        ref = None
        for kind in ("convtranspose", "conv") if s == 1 else ("convtranspose",):
            sess = xgrad(kind, c, o, h, k, s)
            got = sess.run(None, {"dy": dy, "w": w})[0]
            ref = got if ref is None else ref
            assert np.allclose(got, ref, rtol=1e-3, atol=1e-2), kind
            row["x_" + kind] = _ms(sess, {"dy": dy, "w": w}, args.reps)
        print(f"C={c} O={o} H={h} K={k} s={s}: " +
              " ".join(f"{key}={v:.2f}" for key, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
