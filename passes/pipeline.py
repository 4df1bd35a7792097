"""The default optimisation pipeline: an explicit list, in order, each entry saying why."""
from __future__ import annotations

from graphdl.core.ir import Graph

from .constant_folding import ConstantFolding
from .cse import CommonSubexpressionElimination
from .dce import DeadCodeElimination
from .fold_batch_norm import FoldBatchNorm
from .fusion import ActivationFusion, ElementwiseFusion, GemmFusion, LossGradFusion
from .manager import Pass, PassManager
from .simplify import Simplify
from .stability import StabilityRewrites


def default_pipeline() -> list[Pass]:
    return [
        # First, while the user's patterns are intact: log(softmax), BCE(sigmoid) and friends
        # become their stable forms before any other rewrite reshapes them.
        StabilityRewrites(),
        # x*1, x+0, reshape/cast/transpose no-ops: the builder and the VJP rules emit many
        # (unbroadcast reshapes, "g * 1.0" seeds); removing them exposes more sharing.
        Simplify(),
        # Shape vectors, one-hot class ranges and other small all-constant subgraphs are
        # computed once here instead of at every run.
        ConstantFolding(),
        # Inference batch norm with frozen statistics (an imported CNN's) folds into the conv
        # before it, or into one scale-and-shift: four passes over the activations per run
        # saved. After constant folding, so statistics computed from constants count as frozen.
        FoldBatchNorm(),
        # The backprop pass rebuilds equal subexpressions per use (transposes of the same
        # weight, equal constants); merge them once the simplifications above made them equal.
        CommonSubexpressionElimination(),
        # Folding exposes new no-ops (x * a folded all-ones tensor): simplify once more.
        Simplify(),
        # Drop what the rewrites above left unused, so fusion sees true use counts.
        DeadCodeElimination(),
        # MatMul + Add -> Gemm and transposed operands folded into Gemm: one BLAS call per
        # dense layer and its two gradient products.
        GemmFusion(),
        # The ReLU/sigmoid/tanh after a Gemm or Conv runs on its fresh result in place, as
        # the same node: one node and one array less per layer. Before the elementwise
        # fusion, which would otherwise take the activation into a chain.
        ActivationFusion(),
        # The loss and its gradient both need softmax(logits): compute it once, in one node.
        LossGradFusion(),
        # Last of the rewrites: merge the remaining elementwise chains (activations, the ReLU
        # mask multiply of the backprop, the SGD update) into in-place fused nodes.
        ElementwiseFusion(),
        # Fusion absorbs producers and leaves unread constants and transposes behind.
        DeadCodeElimination(),
    ]


def optimize(graph: Graph, trace: list | None = None, fixed_point: bool = False) -> Graph:
    """``graph`` through :func:`default_pipeline`; ``trace`` (a list) receives the per-pass
    trace entries."""
    pm = PassManager(default_pipeline(), fixed_point=fixed_point)
    out = pm.run(graph).graph
    if trace is not None:
        trace.extend(pm.trace)
    return out
