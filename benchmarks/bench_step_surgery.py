"""What-if rewrites of the exported ResNet training step, timed in onnxruntime against the step
as exported, in one process: what a part of the step costs, and what a candidate rewrite of
it gains, before anyone changes graphdl's lowering (issue 14).

Each variant rewrites the ONNX export where graphdl's own node patterns occur (matched by op
type), prunes the nodes that became dead (onnxruntime keeps them otherwise) and says how many
places it rewrote; a variant that finds none is an error, not a ratio of 1.

- ``bn_dx_free``: every batch norm's input gradient is its output gradient, so the closed
  form's full-size passes (dy * a - shift - centred * slope) are gone. An upper bound on any
  rewrite of them; the step is no longer correct.
- ``relu_mask_free``: ReLU's backward passes the gradient through (no Greater, Cast and Mul);
  an upper bound, likewise.
- ``bn_dx_by_batchnorm``: ``dy * a - shift`` as one inference BatchNormalization (mean 0,
  variance 1, epsilon 0): one pass where Mul and Sub take two, the same values bit for bit.
- ``var_by_sumsquare``: the batch variance as ReduceSumSquare(x - mean) / n, where a Mul and a
  ReduceMean write and read a full-size square.

    python benchmarks/bench_step_surgery.py [--rounds 11] [--variants bn_dx_free,...] [--quick]

prints each variant's step time over the exported step's (median, min and max of the
per-round ratios; 1 thread, thread CPU time).
"""
from __future__ import annotations

import copy
import os
import statistics
import sys
import time
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _producers(g: Any) -> dict[str, Any]:
    return {o: n for n in g.node for o in n.output}


def _rewire(m: Any, pairs: dict[str, str]) -> Any:
    """Consumers of each key read its value instead; then the dead nodes go."""
    for n in m.graph.node:
        for k, i in enumerate(n.input):
            if i in pairs:
                n.input[k] = pairs[i]
    return _prune(m)


def _prune(m: Any) -> Any:
    g, outs = m.graph, {o.name for o in m.graph.output}
    while True:
        used = {i for n in g.node for i in n.input} | outs
        dead = [n for n in g.node if not any(o in used for o in n.output)]
        if not dead:
            return m
        for n in dead:
            g.node.remove(n)


def _bn_dx_chains(g: Any) -> list[tuple[Any, Any, Any]]:
    """(Mul(dy, a), Sub(that, shift), Sub(that, centred * slope)) of every closed-form batch
    norm backward (graphdl/ops/batch_norm_core.py)."""
    prod, out = _producers(g), []
    for n in g.node:
        first = prod.get(n.input[0]) if n.op_type == "Sub" else None
        if first is not None and first.op_type == "Sub":
            mul = prod.get(first.input[0])
            if mul is not None and mul.op_type == "Mul":
                out.append((mul, first, n))
    return out


def bn_dx_free(m: Any) -> tuple[Any, int]:
    chains = _bn_dx_chains(m.graph)
    return _rewire(m, {last.output[0]: mul.input[0] for mul, _, last in chains}), len(chains)


def relu_mask_free(m: Any) -> tuple[Any, int]:
    prod, pairs = _producers(m.graph), {}
    for n in m.graph.node:
        if n.op_type != "Mul":
            continue
        for grad, mask in ((0, 1), (1, 0)):
            cast = prod.get(n.input[mask])
            if cast is not None and cast.op_type == "Cast" and \
                    getattr(prod.get(cast.input[0]), "op_type", "") == "Greater":
                pairs[n.output[0]] = n.input[grad]
    return _rewire(m, pairs), len(pairs)


def bn_dx_by_batchnorm(m: Any) -> tuple[Any, int]:
    from onnx import helper, numpy_helper

    g = m.graph
    chains = _bn_dx_chains(g)
    g.initializer.extend([numpy_helper.from_array(np.array([-1], np.int64), "surgery_flat"),
                          numpy_helper.from_array(np.asarray(1.0, np.float32), "surgery_one")])
    for k, (mul, sub, _) in enumerate(chains):
        dy, a = mul.input
        p = f"surgery_bn{k}_"
        new = [helper.make_node("Reshape", [a, "surgery_flat"], [p + "a"]),
               helper.make_node("Reshape", [sub.input[1], "surgery_flat"], [p + "shift"]),
               helper.make_node("Neg", [p + "shift"], [p + "b"]),
               helper.make_node("Sub", [p + "a", p + "a"], [p + "zero"]),
               helper.make_node("Add", [p + "zero", "surgery_one"], [p + "one"]),
               helper.make_node("BatchNormalization",
                                [dy, p + "a", p + "b", p + "zero", p + "one"], list(sub.output),
                                epsilon=0.0)]
        at = list(g.node).index(sub)
        g.node.remove(sub)
        for j, n in enumerate(new):
            g.node.insert(at + j, n)
    return _prune(m), len(chains)


def var_by_sumsquare(m: Any, counts: dict[str, int]) -> tuple[Any, int]:
    """``counts``: the reduced element count of each squared value (from its shape)."""
    from onnx import helper, numpy_helper

    g = m.graph
    users: dict[str, list] = {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    found = [(n, users[n.output[0]][0]) for n in g.node
             if n.op_type == "Mul" and n.input[0] == n.input[1] and n.input[0] in counts
             and [u.op_type for u in users.get(n.output[0], [])] == ["ReduceMean"]]
    for k, (sq, mean) in enumerate(found):
        p = f"surgery_ss{k}_"
        g.initializer.append(numpy_helper.from_array(
            np.asarray(1.0 / counts[sq.input[0]], np.float32), p + "inv_n"))
        new = [helper.make_node("ReduceSumSquare", [sq.input[0], *mean.input[1:]], [p + "sum"],
                                keepdims=1),
               helper.make_node("Mul", [p + "sum", p + "inv_n"], list(mean.output))]
        at = list(g.node).index(sq)
        g.node.remove(sq)
        g.node.remove(mean)
        for j, n in enumerate(new):
            g.node.insert(at + j, n)
    return m, len(found)


VARIANTS = ("bn_dx_free", "relu_mask_free", "bn_dx_by_batchnorm", "var_by_sumsquare")
EXACT = {"bn_dx_by_batchnorm": 0.0, "var_by_sumsquare": 1e-4}  # the others change the step


def case(quick: bool) -> tuple[Any, dict[str, np.ndarray], dict[str, int]]:
    """(the ResNet step's export for this onnxruntime, its feeds, the reduced count of each
    full-size value by name)."""
    import onnx

    from benchmarks import realistic_models as rm
    from graphdl.onnx.opsets import installed_ort_target

    chans, side, blocks = ((4, 8, 8), 8, 1) if quick else \
        (rm.RESNET_CHANNELS, rm.RESNET_SIDE, rm.RESNET_BLOCKS)
    step = rm.resnet_step(chans, side, blocks)
    rng = np.random.default_rng(1)
    batch = 4 if quick else rm.RESNET_BATCH
    feeds = {"x": rng.standard_normal((batch, 3, side, side)).astype(np.float32),
             "y": rng.integers(0, 10, batch).astype(np.int64),
             **step.initial, **step.hyperparam_feeds()}
    model = step.to_onnx(target=installed_ort_target())
    typed = onnx.shape_inference.infer_shapes(model)
    counts = {}
    for v in typed.graph.value_info:
        dims = v.type.tensor_type.shape.dim
        if len(dims) == 4 and all(d.HasField("dim_value") for d in dims[1:]):
            counts[v.name] = batch * dims[2].dim_value * dims[3].dim_value
    return model, feeds, counts


def rewrite(model: Any, name: str, counts: dict[str, int]) -> tuple[Any, int]:
    """(a rewritten copy of ``model``, the number of places rewritten)."""
    fn: Callable = globals()[name]
    m = copy.deepcopy(model)
    return fn(m, counts) if name == "var_by_sumsquare" else fn(m)


def _session(model: Any) -> Any:
    import onnxruntime as ort

    from graphdl.engine.ort_options import session_options

    return ort.InferenceSession(model.SerializeToString(), session_options(None, 1),
                                providers=["CPUExecutionProvider"])


def measure(names: list[str], rounds: int, quick: bool) -> dict[str, dict]:
    """Per variant: places rewritten, the largest output difference from the exported step's
    and the per-round time ratios to it."""
    from benchmarks.harness import interleaved

    model, feeds, counts = case(quick)
    models = {"exported": model}
    out: dict[str, dict] = {}
    for name in names:
        models[name], places = rewrite(model, name, counts)
        if places == 0:
            raise ValueError(f"{name}: the export has none of the nodes it rewrites")
        out[name] = {"places": places}
    sessions = {k: _session(m) for k, m in models.items()}
    fed = {k: {i.name: feeds[i.name] for i in s.get_inputs()} for k, s in sessions.items()}
    ref = sessions["exported"].run(None, fed["exported"])
    for name in names:
        got = sessions[name].run(None, fed[name])
        out[name]["max_diff"] = max(float(np.max(np.abs(a - b)))
                                    for a, b in zip(got, ref) if a.dtype.kind == "f")
    calls = {k: (lambda s=s, f=fed[k]: s.run(None, f)) for k, s in sessions.items()}
    times = interleaved(calls, rounds, 0.002 if quick else 0.5, clock=time.thread_time)
    for name in names:
        out[name]["ratios"] = [a / b for a, b in zip(times[name], times["exported"])]
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--quick", action="store_true", help="the shrunken ResNet, batch 4")
    args = ap.parse_args(argv)
    for name, r in measure(args.variants.split(","), args.rounds, args.quick).items():
        rs = r["ratios"]
        print(f"{name}: {r['places']} places, step / exported {statistics.median(rs):.3f} "
              f"(min {min(rs):.3f}, max {max(rs):.3f}), outputs differ by at most "
              f"{r['max_diff']:.2g}", flush=True)


if __name__ == "__main__":
    main()
