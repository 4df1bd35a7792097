"""Where a model's or a training step's time goes, node by node: :func:`profile` and the
``graphdl profile MODEL_OR_STEP_DIR [--feed NAME=PATH ...] [--backend ort|numpy]`` command.

- ``ort``: the exported model in onnxruntime with its profiler on (graphdl.engine.ort_options); each
  node's kernel time comes from onnxruntime's trace, the warm-up runs left out. The export tags
  every ONNX node with the graphdl node it lowers and, for gradient nodes, the forward node it
  was built for (graphdl/onnx/tags.py), so the report says which forward op each backward
  kernel belongs to, also for a step saved to disk.
- ``numpy``: graphdl's interpreter, each node's kernel timed as the plan calls it (without the
  plan's buffer reuse, which changes little of a kernel's time).

The report lists the op types by time with their share of the total, and the top nodes; for
MatMul, Gemm and convolutions it adds the multiply-add rate (GMAC/s), computed from the shapes
the kernel saw. A step directory (TrainStep.save) runs from its initial state and default
hyperparameters; any input not fed gets data of its shape (float: standard normal; integer
and bool: zeros, valid class indices), symbolic dims taking ``batch``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.errors import GraphError

MAC_OPS = ("MatMul", "FusedMatMul", "Gemm", "Conv", "ConvTranspose", "matmul", "gemm", "conv",
           "conv_transpose", "conv_weight_grad")


@dataclass
class NodeTime:
    """One node's time per run (the median over the timed runs: robust to another process
    taking the core for a while); ``macs`` for matrix products and convolutions."""

    name: str
    op: str
    seconds: float
    macs: int | None = None
    node: str | None = None  # the graphdl node (ort: from the export's tags)
    grad_of: str | None = None  # the forward node, for a gradient node


@dataclass
class Profile:
    backend: str
    runs: int
    nodes: list[NodeTime]

    @property
    def total(self) -> float:
        """Seconds per run, the sum of the nodes' times."""
        return sum(n.seconds for n in self.nodes)

    def by_op(self) -> list[dict[str, Any]]:
        """One row per op type, most time first: op, seconds, share, nodes, gmacs_per_s."""
        rows: dict[str, dict[str, Any]] = {}
        for n in self.nodes:
            r = rows.setdefault(n.op, {"op": n.op, "seconds": 0.0, "nodes": 0, "macs": None})
            r["seconds"] += n.seconds
            r["nodes"] += 1
            if n.macs is not None:
                r["macs"] = (r["macs"] or 0) + n.macs
        total = self.total or 1.0
        for r in rows.values():
            r["share"] = r["seconds"] / total
            r["gmacs_per_s"] = _rate(r.pop("macs"), r["seconds"])
        return sorted(rows.values(), key=lambda r: -r["seconds"])

    def top(self, k: int = 15) -> list[NodeTime]:
        return sorted(self.nodes, key=lambda n: -n.seconds)[:k]

    def format(self, top: int = 15) -> str:
        """The report ``graphdl profile`` prints."""
        lines = [f"{self.backend}: {self.total * 1e3:.3f} ms per run (sum of {len(self.nodes)} "
                 f"nodes' medians over {self.runs} runs)", "",
                 f"{'op':<24}{'time/run':>12}{'share':>8}{'nodes':>7}{'GMAC/s':>9}"]
        for r in self.by_op()[:top]:
            rate = "" if r["gmacs_per_s"] is None else f"{r['gmacs_per_s']:.1f}"
            lines.append(f"{r['op']:<24}{_ms(r['seconds']):>12}{r['share']:>8.1%}"
                         f"{r['nodes']:>7}{rate:>9}")
        lines += ["", f"{'node':<36}{'op':<16}{'time/run':>11}{'share':>8}{'GMAC/s':>9}  "
                      "graphdl node (gradient of)"]
        for n in self.top(top):
            rate = _rate(n.macs, n.seconds)
            origin = (n.node or "") + (f" (gradient of {n.grad_of})" if n.grad_of else "")
            lines.append(f"{n.name[:35]:<36}{n.op[:15]:<16}{_ms(n.seconds):>11}"
                         f"{n.seconds / (self.total or 1.0):>8.1%}"
                         f"{'' if rate is None else f'{rate:.1f}':>9}  {origin}")
        return "\n".join(lines)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


def _rate(macs: int | None, seconds: float) -> float | None:
    return None if macs is None or seconds <= 0 else macs / seconds / 1e9


def product_macs(op: str, ins: Sequence[Sequence[int] | None], out: Sequence[int]) -> int | None:
    """Multiply-adds of a matrix product or convolution from its input and output shapes."""
    if op in ("MatMul", "FusedMatMul", "Gemm", "matmul", "gemm"):
        a = ins[0]
        if a is None or len(a) < 2 or len(out) < 2 or out[-2] == 0:
            return None if a is None or len(a) < 1 else int(np.prod(out)) * int(a[-1])
        return int(np.prod(out)) * int(np.prod(a[-2:])) // int(out[-2])  # K, transposed or not
    if op in ("Conv", "conv") and len(ins) > 1 and ins[1] is not None:
        return int(np.prod(out)) * int(np.prod(ins[1][1:]))  # per output: C_in/group * kernel
    if op in ("ConvTranspose", "conv_transpose") and len(ins) > 1 and ins[1] is not None:
        return int(np.prod(ins[0])) * int(np.prod(ins[1][1:]))  # per input: C_out/group * k
    if op == "conv_weight_grad" and ins[0] is not None:
        return int(np.prod(out)) * int(np.prod(ins[0])) // int(ins[0][1])  # dW per x element
    return None


# -- feeds -------------------------------------------------------------------------------------


def default_feeds(inputs: Sequence[tuple[str, str, Sequence[Any]]], given: Mapping[str, Any],
                  batch: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """``given`` plus, for each (name, numpy dtype, shape) input not in it, data of that shape:
    standard normal floats, zeros otherwise; a symbolic dim takes ``batch``."""
    rng = np.random.default_rng(seed)
    feeds = {k: np.asarray(v) for k, v in given.items()}
    for name, dtype, shape in inputs:
        if name in feeds:
            continue
        dims = tuple(d if isinstance(d, int) and d >= 0 else batch for d in shape)
        dt = np.dtype(dtype)
        feeds[name] = rng.standard_normal(dims).astype(dt) if dt.kind == "f" \
            else np.zeros(dims, dt)
    return feeds


# -- engines -----------------------------------------------------------------------------------


def _ort_profile(model: Any, feeds: Mapping[str, np.ndarray], runs: int, warmup: int,
                 threads: int | None) -> list[NodeTime]:
    import onnxruntime as ort

    from ..onnx.tags import GRAD_OF, NODE, read_tags
    from ..engine.ort_options import OrtOptions

    tags = read_tags(model)
    with tempfile.TemporaryDirectory() as tmp:
        opts = OrtOptions(threads=threads, profile=os.path.join(tmp, "profile"))
        try:
            sess = ort.InferenceSession(model.SerializeToString(), opts.session_options(),
                                        providers=["CPUExecutionProvider"])
            run_feeds = {i.name: feeds[i.name] for i in sess.get_inputs()}
            for _ in range(warmup + runs):
                sess.run(None, run_feeds)
        except Exception as e:  # noqa: BLE001 - bad feeds or model: the user's to fix
            raise GraphError(f"profile: onnxruntime refused the model or feeds: "
                             f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    starts = sorted(e["ts"] for e in events if e.get("name") == "model_run")
    since = starts[warmup] if len(starts) > warmup else 0
    acc: dict[str, NodeTime] = {}
    durs: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < since:
            continue
        name, args = e["name"][:-len("_kernel_time")], e.get("args", {})
        if name not in acc:
            shapes = [_first_shape(s) for s in args.get("input_type_shape", [])]
            outs = [_first_shape(s) for s in args.get("output_type_shape", [])]
            op = args.get("op_name", "?")
            tag = tags.get(name) or tags.get(name.split("/")[0], {})
            macs = product_macs(op, shapes, outs[0]) if outs and outs[0] is not None else None
            acc[name] = NodeTime(name, op, 0.0, macs, tag.get(NODE), tag.get(GRAD_OF))
        durs.setdefault(name, []).append(e["dur"] * 1e-6)
    for name, n in acc.items():
        n.seconds = float(np.median(durs[name]))
    return list(acc.values())


def _first_shape(entry: Any) -> list[int] | None:
    if isinstance(entry, dict) and entry:
        return list(next(iter(entry.values())))
    return None


def _numpy_profile(graph: Any, feeds: Mapping[str, np.ndarray], runs: int,
                   warmup: int) -> list[NodeTime]:
    from ..engine.interpreter import Plan

    plan = Plan(graph, inplace=False)
    missing = [v.name for v in plan.graph.inputs if v.name not in feeds]
    if missing:
        raise GraphError(f"profile: no feed for input(s) {missing}")
    slot = {v: i for i, v in enumerate(plan.graph.all_values())}
    times: list[list[float]] = [[] for _ in plan.steps]
    macs: list[int | None] = [None] * len(plan.steps)
    for r in range(warmup + runs):
        env: list[Any] = [None] * plan.n_slots
        for v in plan.graph.inputs:
            env[slot[v]] = np.asarray(feeds[v.name])
        for s, arr in plan.init_slots:
            env[s] = arr
        for k, (kernel, attrs, ins, outs, _, node) in enumerate(plan.steps):
            args = [None if i < 0 else env[i] for i in ins]
            t0 = time.perf_counter()
            res = kernel(*args, **attrs)
            if r >= warmup:
                times[k].append(time.perf_counter() - t0)
            res = res if isinstance(res, tuple) else (res,)
            for i, val in zip(outs, res):
                env[i] = val
            if r == 0 and node.op in MAC_OPS:
                macs[k] = product_macs(node.op, [None if a is None else np.shape(a)
                                                 for a in args], np.shape(res[0]))
    return [NodeTime(n.name, n.op, float(np.median(t)), m, n.name, n.grad_of)
            for (_, _, _, _, _, n), t, m in zip(plan.steps, times, macs)]


# -- models and step directories ---------------------------------------------------------------


def profile(model: Any, feeds: Mapping[str, Any] | None = None, backend: str = "ort",
            runs: int = 10, warmup: int = 2, threads: int | None = 1,
            batch: int = 32) -> Profile:
    """Profiles ``model``: a graphdl Graph, a TrainStep, an ONNX ModelProto, or a path to an
    ``.onnx`` file or to a step directory (TrainStep.save). Inputs not in ``feeds`` get
    data of their shape (see the module docstring); ``threads`` is onnxruntime's intra-op
    thread count (1 by default, so times add up)."""
    if backend not in ("ort", "numpy"):
        raise GraphError(f"profile: backend must be 'ort' or 'numpy', got {backend!r}")
    if runs < 1 or warmup < 0:
        raise GraphError(f"profile: runs must be >= 1 and warmup >= 0, got {runs}, {warmup}")
    given, source = _resolve(model, dict(feeds or {}))
    if backend == "ort":
        proto = source if not hasattr(source, "nodes") else _to_onnx(source)
        inputs = [(i.name, _onnx_np_dtype(i), _onnx_dims(i)) for i in proto.graph.input]
        nodes = _ort_profile(proto, default_feeds(inputs, given, batch), runs, warmup, threads)
    else:
        graph = source if hasattr(source, "nodes") else _from_onnx(source)
        inputs = [(v.name, v.type.dtype.np, v.type.shape or ()) for v in graph.inputs]
        nodes = _numpy_profile(graph, default_feeds(inputs, given, batch), runs, warmup)
    return Profile(backend, runs, nodes)


def _resolve(model: Any, given: dict) -> tuple[dict, Any]:
    """(feeds with a step's state and hyperparameters, a Graph or a ModelProto)."""
    from ..training.step import TrainStep, load_manifest

    if isinstance(model, TrainStep):
        return {**model.initial, **model.hyperparam_feeds(), **given}, model.graph
    if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
        base = os.path.join(model, "train_step")
        if not os.path.isfile(base + ".onnx"):
            raise GraphError(f"{model}: not a step directory (no train_step.onnx)")
        manifest = load_manifest(base + ".json")
        with np.load(base + ".init.npz") as z:
            state = {k: z[k] for k in z.files}
        dtype = np.dtype(manifest["dtype"])
        hp = {k: np.asarray(v, dtype) for k, v in manifest["hyperparams"].items()}
        return {**state, **hp, **given}, _load_onnx(base + ".onnx")
    if isinstance(model, (str, os.PathLike)):
        return given, _load_onnx(str(model))
    return given, model


def _load_onnx(path: str) -> Any:
    import onnx

    return onnx.load(path)


def _to_onnx(graph: Any) -> Any:
    from ..onnx.export import to_onnx

    return to_onnx(graph)


def _from_onnx(proto: Any) -> Any:
    from ..onnx.importer import from_onnx

    return from_onnx(proto)


def _onnx_np_dtype(vi: Any) -> Any:
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type)


def _onnx_dims(vi: Any) -> list[Any]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in vi.type.tensor_type.shape.dim]
