"""The interpreter's kernel choices, each against its alternative, per shape: the measurements
behind the dispatch rules of graphdl/ops/conv_kernels.py, graphdl/ops/conv.py and
graphdl/ops/linalg.py (batch 32, 3x3 kernels with padding 1, one thread, interleaved rounds of
thread CPU time; each pair's outputs are checked equal first):

- conv forward (one group): im2col in blocks of about 1 MiB of columns against the whole
  batch's columns at once (stride 1, and at stride 2 for the ResNet's downsampling convs);
  at stride 1, the columns from the flat padded grid against strided copies;
- conv weight gradient at stride 1: im2col against the flat grid (one product per tap);
- ConvTranspose at stride 1 (the input gradient): the flipped conv against col2im; with a
  kernel no longer than its stride 2: one product per kernel offset at its phase against
  col2im;
- matmul of a stack [..., K] by one matrix [K, F]: numpy.matmul against one product over all
  rows;
- keeping freed memory (graphdl/engine/freed_memory.py): the CIFAR ResNet's training step in
  the interpreter in two child processes, one with ``GRAPHDL_KEEP_FREED_MEMORY=0``, taking
  turns (the setting is process-wide, so it cannot be switched within one process).

Each line prints the median ratio (the chosen rule's kernel first where the rule picks it)
and the grid's size over the output where a grid is involved.

    python benchmarks/bench_interp_kernels.py [--rounds 7] [--quick]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread (set before numpy loads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.harness import interleaved, median_ratio, same_outputs  # noqa: E402
from graphdl.ops.conv import im2col_weight_grad  # noqa: E402
from graphdl.ops.conv_kernels import (_FlatGrid, _flipped, _pixel_shuffle,  # noqa: E402
                                      blocked_im2col, col2im, conv_forward, flat_weight_grad)
from graphdl.ops.linalg import _matmul_kernel  # noqa: E402

#: (channels in, channels out, side): a CIFAR ResNet's stride-1 convs, larger maps, its stem
CONV_SHAPES = [(16, 16, 32), (32, 32, 16), (64, 64, 8), (16, 16, 56), (64, 64, 14), (3, 16, 32)]
#: (channels in, channels out, side) at stride 2: the ResNet's downsampling convs; and a
#: DenseNet-like 3x3 conv (C = 4 O) at stride 1
BLOCK_SHAPES = [(16, 32, 32, 2), (32, 64, 16, 2), (128, 32, 14, 1)]
#: (channels in, channels out, side) for ConvTranspose: the ResNet's and the digits CNN's
TRANSPOSE_SHAPES = [(16, 16, 32), (32, 32, 16), (64, 64, 8), (16, 32, 4)]
PADS, ONES = (1, 1, 1, 1), (1, 1)


def _pair(name: str, fns: dict, rounds: int, chunk_s: float, note: str = "") -> float:
    """Checks the two contenders agree, then prints and returns first / second's median."""
    a, b = list(fns)
    same_outputs(name, {"y": fns[a]()}, {"y": fns[b]()})
    ratio = median_ratio(interleaved(fns, rounds, chunk_s), a, b)
    print(f"{name}: {a} / {b} = {ratio:.2f}{note}", flush=True)
    return ratio


def _blocks_pair(x: np.ndarray, w: np.ndarray, stride: int, rounds: int, chunk: float) -> float:
    """A 3x3 conv with padding 1: im2col in blocks of the default size / the whole batch."""
    outs = ((x.shape[2] - 1) // stride + 1,) * 2
    geo = ((stride, stride), ONES, PADS, outs)
    return _pair(f"conv {x.shape[1]}->{w.shape[0]} {x.shape[2]}x{x.shape[3]} stride {stride}", {
        "blocks": lambda: blocked_im2col(x, w, *geo),
        "whole batch": lambda: blocked_im2col(x, w, *geo, block_bytes=1 << 62)}, rounds, chunk)


def resnet_step_ms(steps: int, quick: bool) -> float:
    """The median thread CPU time (ms) of ``steps`` ResNet training steps in the interpreter,
    after two warm-up steps (run in a child process by :func:`freed_memory`)."""
    import passes
    from benchmarks import realistic_models as rm
    from graphdl.engine.interpreter import Plan

    chans, side, blocks = ((4, 8, 8), 8, 1) if quick else \
        (rm.RESNET_CHANNELS, rm.RESNET_SIDE, rm.RESNET_BLOCKS)
    step = rm.resnet_step(chans, side, blocks)
    rng = np.random.default_rng(1)
    feeds = {"x": rng.standard_normal((rm.RESNET_BATCH, 3, side, side)).astype(np.float32),
             "y": rng.integers(0, 10, rm.RESNET_BATCH).astype(np.int64),
             **step.hyperparam_feeds()}
    plan, state, times = Plan(passes.optimize(step.graph)), dict(step.initial), []
    for i in range(steps + 2):
        t0 = time.thread_time()
        state = step.carry(plan({**feeds, **state}))
        if i >= 2:
            times.append(time.thread_time() - t0)
    return statistics.median(times) * 1e3


def freed_memory(rounds: int, quick: bool) -> float:
    """Prints and returns the median over rounds of the kept / handed-back step time ratio."""
    def child(keep: str) -> float:
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.bench_interp_kernels"
                " import resnet_step_ms as f; print(f(int(sys.argv[2]), sys.argv[3] == '1'))")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run([sys.executable, "-c", code, root, "2" if quick else "5",
                              "1" if quick else "0"], env={**os.environ,
                             "GRAPHDL_KEEP_FREED_MEMORY": keep}, capture_output=True, text=True,
                             check=True)
        return float(out.stdout.split()[-1])

    ratios = [child("1") / child("0") for _ in range(rounds)]
    ratio = statistics.median(ratios)
    print(f"ResNet step in the interpreter: freed memory kept / handed back = {ratio:.2f} "
          f"(rounds {' '.join(f'{r:.2f}' for r in ratios)})", flush=True)
    return ratio


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="batch 2, 3 rounds (a smoke run)")
    args = ap.parse_args(argv)
    n, rounds, chunk = (2, 3, 0.002) if args.quick else (32, args.rounds, 0.1)
    rng = np.random.default_rng(0)
    for c, o, side in CONV_SHAPES:
        x = rng.standard_normal((n, c, side, side)).astype(np.float32)
        w = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
        gy = rng.standard_normal((n, o, side, side)).astype(np.float32)
        grid = _FlatGrid((side, side), (3, 3), ONES, PADS, (side, side))
        size = f" (grid {grid.total / side ** 2:.2f}x the output)"
        _blocks_pair(x, w, 1, rounds, chunk)
        geo = (ONES, ONES, PADS, (side, side))
        _pair(f"conv {c}->{o} {side}x{side} columns", {
            "flat grid": lambda: blocked_im2col(x, w, *geo),
            "strided copies": lambda: blocked_im2col(x, w, *geo, flat=False)}, rounds, chunk)
        _pair(f"weight gradient {c}->{o} {side}x{side}", {
            "flat": lambda: flat_weight_grad(x, gy, grid),
            "im2col": lambda: im2col_weight_grad(
                x, gy, (3, 3), {"strides": ONES, "pads": PADS, "dilations": ONES}, 1)},
            rounds, chunk, size)
    for c, o, side, stride in BLOCK_SHAPES:
        _blocks_pair(rng.standard_normal((n, c, side, side)).astype(np.float32),
                     rng.standard_normal((o, c, 3, 3)).astype(np.float32), stride, rounds, chunk)
    for c, o, side in TRANSPOSE_SHAPES:
        gy = rng.standard_normal((n, o, side, side)).astype(np.float32)
        w = rng.standard_normal((o, c, 3, 3)).astype(np.float32)
        _pair(f"ConvTranspose {o}->{c} {side}x{side}", {
            "flipped conv": lambda: conv_forward(gy, _flipped(w, 1), None, ONES, ONES, PADS, 1,
                                                 (side, side)),
            "col2im": lambda: col2im(gy, w, None, ONES, ONES, PADS, 1, (0, 0))},
            rounds, chunk)
    for k in (1, 2):  # kernel <= stride 2: a 1x1 shortcut's input gradient, 2x2 upsampling
        gy = rng.standard_normal((n, 32, 16, 16)).astype(np.float32)
        w = rng.standard_normal((32, 16, k, k)).astype(np.float32)
        geo = ((2, 2), ONES, (0, 0, 0, 0))
        _pair(f"ConvTranspose 32->16 {k}x{k} stride 2 at 16x16", {
            "phases": lambda: _pixel_shuffle(gy, w, None, geo[0], geo[2], 1, (2 - k, 2 - k)),
            "col2im": lambda: col2im(gy, w, None, *geo, 1, (2 - k, 2 - k))}, rounds, chunk)
    a = rng.standard_normal((n, 32, 128)).astype(np.float32)
    b = rng.standard_normal((128, 512)).astype(np.float32)
    _pair(f"matmul [{n}, 32, 128] @ [128, 512]", {
        "one product": lambda: _matmul_kernel(a, b), "numpy.matmul": lambda: np.matmul(a, b)},
        rounds, chunk)
    freed_memory(1 if args.quick else 3, args.quick)


if __name__ == "__main__":
    main()
