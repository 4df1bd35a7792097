"""Batch norm in training mode as graphdl exports it, forward and backward, in stock onnxruntime
(CPU, one thread), per batch-norm layer of the CIFAR ResNet (batch 32): the measurement behind
the lowering of graphdl/ops/batch_norm_core.py.

- ``training-mode``: the export at opset 17, one ``BatchNormalization`` with
  ``training_mode=1`` and momentum 0 whose running outputs are the batch statistics;
- ``decomposed``: the export at opset 13 (before training mode), the statistics by ReduceMean,
  Sub, Mul, ReduceMean and y by the inference ``BatchNormalization``.

The graph is y, the running statistics and the gradients of x, gamma and beta for a weighted
sum of y. Both exports are checked against each other first; each line prints the median
ratio over interleaved rounds of thread CPU time.

    python benchmarks/bench_bn_export.py [--rounds 9] [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import interleaved, median_ratio, same_outputs  # noqa: E402

#: (channels, side): the ResNet's batch-norm layers (stage 1 to 3)
SHAPES = [(16, 32), (32, 16), (64, 8)]


def bn_session(n: int, c: int, side: int, opset: int):
    """(an onnxruntime session of the exported batch-norm step at ``opset``, its feeds)."""
    import onnxruntime as ort

    import graphdl as gd
    import passes
    from graphdl.onnx.export import to_onnx

    b = gd.GraphBuilder("bn")
    x = b.input("x", [n, c, side, side])
    vecs = [b.input(k, [c]) for k in ("gamma", "beta", "rm", "rv")]
    y, m, v = gd.batch_norm_train(x, *vecs)
    loss = gd.reduce_sum(y * b.input("r", [n, c, side, side]))
    g = passes.grad(b.build({"y": y, "new_mean": m, "new_var": v, "loss": loss}), "loss",
                    ["x", "gamma", "beta"])
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((n, c, side, side)) * 2 + 1, "gamma": rng.random(c) + .5,
             "beta": rng.standard_normal(c), "rm": np.zeros(c), "rv": np.ones(c),
             "r": rng.standard_normal((n, c, side, side))}
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(to_onnx(g, opset=opset).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return sess, {k: a.astype(np.float32) for k, a in feeds.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--quick", action="store_true", help="batch 2, 3 rounds (a smoke run)")
    args = ap.parse_args(argv)
    n, rounds, chunk = (2, 3, 0.002) if args.quick else (32, args.rounds, 0.1)
    for c, side in SHAPES:
        fns = {}
        for name, opset in (("training-mode", 17), ("decomposed", 13)):
            sess, feeds = bn_session(n, c, side, opset)
            names = [o.name for o in sess.get_outputs()]
            fns[name] = (lambda s, f, k: lambda: dict(zip(k, s.run(None, f))))(sess, feeds,
                                                                                  names)
        same_outputs(f"batch norm {c}x{side}x{side}", fns["training-mode"](),
                     fns["decomposed"]())
        ratio = median_ratio(interleaved(fns, rounds, chunk), "training-mode", "decomposed")
        print(f"batch norm {c} channels {side}x{side}: training-mode / decomposed = "
              f"{ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
