"""The realistic benchmark's floor (benchmarks/product_floor.py): the exported step's product
nodes as onnxruntime runs them, counted against the export's own products (onnxruntime's
fusions rename some of them, which must still count) and against its other nodes."""
from __future__ import annotations

import numpy as np

from benchmarks import realistic_models as rm
from benchmarks.product_floor import product_nodes
from graphdl.tools.profiling import profile


def _exported_ops(step) -> list[str]:
    return [n.op_type for n in step.to_onnx().graph.node]


def test_mlp_floor_counts_every_product_fused_or_not():
    step = rm.mlp_step((12, 8, 5))
    rng = np.random.default_rng(0)
    batch = {"x": rng.standard_normal((6, 12)).astype(np.float32),
             "y": rng.integers(0, 5, 6).astype(np.int64)}
    prof = profile(step, batch, runs=2)
    found = product_nodes(prof)
    ops = _exported_ops(step)
    # 2 forward; dW2, dh1 and dW1 backward (no gradient for the batch)
    assert len(found) == ops.count("MatMul") + ops.count("Gemm") == 5
    # onnxruntime fused bias adds and transposes into some of them: those count too
    assert {n.op for n in found} - {"MatMul", "Gemm"}
    assert 0 < sum(n.seconds for n in found) < prof.total


def test_resnet_floor_is_its_convolutions_and_products_only():
    step = rm.resnet_step((4, 8, 8), 8, 1)
    rng = np.random.default_rng(1)
    batch = {"x": rng.standard_normal((3, 3, 8, 8)).astype(np.float32),
             "y": rng.integers(0, 10, 3).astype(np.int64)}
    prof = profile(step, batch, runs=2)
    kinds = [n.op for n in product_nodes(prof)]
    assert kinds.count("Conv") == 9 and kinds.count("ConvTranspose") == 8  # no stem dx
    others = [n for n in prof.nodes if n not in product_nodes(prof)]
    assert not {n.op for n in others} & {"MatMul", "Gemm", "Conv", "ConvTranspose"}
    assert 0 < sum(n.seconds for n in product_nodes(prof)) < prof.total
