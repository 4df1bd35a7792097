"""Backprop over a 10,000-node chain: grad + ONNX export must finish (no recursion limit) and
take under 2 s. Reference measured in the same run: PyTorch eager forward + backward over the
same chain (CPU, 1 thread), when torch is installed.

    python benchmarks/bench_chain.py [--nodes 10000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import graphdl as gd
import passes


def build_chain(n: int) -> gd.Graph:
    """y = tanh(... tanh(x * w) ...) alternating mul/tanh, n nodes in all."""
    b = gd.GraphBuilder("chain")
    x = b.input("x", ["N", 16])
    w = b.param("w", np.full((16,), 0.999, np.float32))
    y = x
    for i in range(n // 2):
        y = gd.tanh(y * w)
    return b.build({"loss": gd.reduce_sum(y)})


def graphdl_seconds(n: int) -> tuple[float, float, int]:
    g = build_chain(n)
    t0 = time.perf_counter()
    gg = passes.grad(g, "loss", ["w", "x"])
    t1 = time.perf_counter()
    model = gd.to_onnx(gg)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(model.graph.node)


def torch_seconds(n: int) -> float | None:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    x = torch.ones(4, 16, requires_grad=True)
    w = torch.full((16,), 0.999, requires_grad=True)
    t0 = time.perf_counter()
    y = x
    for _ in range(n // 2):
        y = torch.tanh(y * w)
    y.sum().backward()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    args = ap.parse_args()
    grad_s, export_s, onnx_nodes = graphdl_seconds(args.nodes)
    ref = torch_seconds(args.nodes)
    total = grad_s + export_s
    print(f"nodes={args.nodes} grad_s={grad_s:.3f} export_s={export_s:.3f} total_s={total:.3f} "
          f"onnx_nodes={onnx_nodes} budget_ratio={total / 2.0:.2f}")
    if ref is not None:
        print(f"reference=torch_eager_fwd_bwd_s={ref:.3f} ratio_vs_torch={total / ref:.1f}")


if __name__ == "__main__":
    main()
