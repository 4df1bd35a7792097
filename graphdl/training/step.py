"""A whole training step as one graph: forward, backward and optimiser update.

``passes.training_step(forward, optimizer)`` builds it (graphdl does not import passes); this
module holds the result. The step graph's inputs are the batch (with any dropout masks), the
carried values (parameters, optimiser state, batch-norm running statistics) and the
hyperparameters; its outputs are the loss, any metrics, and ``NAME.next`` for every carried
input ``NAME``. The JSON manifest says which output feeds which input next step, so any engine
that runs ONNX can train with the exported model and a loop of a few lines.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..core.builder import GraphBuilder
from ..core.errors import GraphError
from ..core.fileio import write_atomic
from ..core.ir import Graph
from ..optim.base import Optimizer, all_hyperparams, build_updates, init_state
from ..optim.transforms import UpdateOptions

FORMAT = "graphdl-train-step/1"
NEXT = ".next"


@dataclass
class TrainStep:
    """A training-step graph, its manifest and the initial value of every carried input."""

    graph: Graph
    manifest: dict[str, Any]
    initial: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def next_step(self) -> dict[str, str]:
        """Output name -> the input it feeds on the next step."""
        return self.manifest["next_step"]

    @property
    def hyperparams(self) -> dict[str, float]:
        return self.manifest["hyperparams"]

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.manifest["dtype"])

    def hyperparam_feeds(self, **overrides: float) -> dict[str, np.ndarray]:
        """Scalar feeds for the hyperparameter inputs: the defaults with ``overrides``."""
        unknown = set(overrides) - set(self.hyperparams)
        if unknown:
            raise GraphError(f"training step has no hyperparameter(s) {sorted(unknown)}; "
                             f"it has {sorted(self.hyperparams)}")
        vals = {**self.hyperparams, **overrides}
        return {k: np.asarray(v, self.dtype) for k, v in vals.items()}

    def carry(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The carried inputs of the next step, from this step's outputs."""
        return {inp: outputs[out] for out, inp in self.next_step.items()}

    def params(self, state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The trainable parameters out of a carried state."""
        return {e["input"]: state[e["input"]] for e in self.manifest["state"]
                if e["kind"] == "param"}

    def draw_masks(self, rng: np.random.Generator,
                   batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A fresh keep-mask for every dropout mask input, its symbolic dims sized from the
        batch (a dim named N takes the size N has in the batch inputs)."""
        from ..ops.dropout import keep_mask

        sizes: dict[str, int] = {}
        for spec in self.manifest["batch_inputs"]:
            for d, n in zip(spec["shape"], np.shape(batch[spec["name"]])):
                if isinstance(d, str):
                    sizes[d] = n
        out = {}
        for name, m in self.manifest["masks"].items():
            shape = tuple(sizes[d] if isinstance(d, str) else d for d in m["shape"])
            out[name] = keep_mask(rng, shape, m["rate"], np.dtype(m["dtype"]))
        return out

    def to_onnx(self, opset: int | None = None, target: str | None = None):
        """The step as ONNX: at ``opset``, at the newest opset of ``target``
        (``"onnxruntime==1.30"``), or at the portable default (see onnx.export.to_onnx)."""
        from ..onnx.export import to_onnx

        return to_onnx(self.graph, opset, target=target)

    def save(self, folder: str, name: str = "train_step", opset: int | None = None,
             target: str | None = None) -> dict[str, str]:
        """Writes NAME.onnx (at ``opset``/``target``, default portable), NAME.json (the
        manifest), NAME.init.npz (initial state) and NAME.init.bin (the same state as raw
        little-endian arrays that the manifest's ``initial_state`` lists, for readers without
        NumPy, e.g. Node.js) into ``folder``, each atomically; returns their paths."""
        os.makedirs(folder, exist_ok=True)
        paths = {k: os.path.join(folder, f"{name}{ext}") for k, ext in
                 (("onnx", ".onnx"), ("manifest", ".json"), ("initial", ".init.npz"),
                  ("initial_raw", ".init.bin"))}
        raw, entries = raw_arrays(self.initial)
        manifest = {**self.manifest, "initial_state": {
            "file": os.path.basename(paths["initial_raw"]), "byte_order": "little",
            "tensors": entries}}
        write_atomic(paths["onnx"], self.to_onnx(opset, target).SerializeToString())
        write_atomic(paths["manifest"], json.dumps(manifest, indent=1).encode())
        write_atomic(paths["initial"], _npz_bytes(self.initial))
        write_atomic(paths["initial_raw"], raw)
        return paths

    @classmethod
    def load(cls, folder: str, name: str = "train_step") -> "TrainStep":
        """A step written by :meth:`save`, its graph imported from the ONNX file."""
        from ..onnx.importer import from_onnx

        base = os.path.join(folder, name)
        with np.load(base + ".init.npz") as z:
            initial = {k: z[k] for k in z.files}
        manifest = load_manifest(base + ".json")
        manifest.pop("initial_state", None)  # where save put the raw state, not the step's
        return cls(from_onnx(base + ".onnx"), manifest, initial)


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def raw_arrays(arrays: Mapping[str, np.ndarray]) -> tuple[bytes, list[dict[str, Any]]]:
    """The arrays as one buffer of C-order little-endian data, each starting at a multiple of
    8 bytes, and their entries: name, dtype (NumPy's name), shape, byte offset and length."""
    chunks, entries, offset = [], [], 0
    for name, a in arrays.items():
        a = np.asarray(a)  # not ascontiguousarray, which makes a scalar 1-D
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(order="C")
        pad = -len(data) % 8
        entries.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape),
                        "offset": offset, "nbytes": len(data)})
        chunks += [data, b"\0" * pad]
        offset += len(data) + pad
    return b"".join(chunks), entries


def read_raw_arrays(path: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """The arrays that :func:`raw_arrays` wrote to ``path`` (the inverse, for tests/tools)."""
    with open(path, "rb") as f:
        buf = f.read()
    return {e["name"]: np.frombuffer(buf, np.dtype(e["dtype"]).newbyteorder("<"),
                                     int(np.prod(e["shape"], dtype=np.int64)),
                                     e["offset"]).reshape(e["shape"]).copy() for e in entries}


def load_manifest(path: str) -> dict[str, Any]:
    with open(path) as f:
        m = json.load(f)
    if m.get("format") != FORMAT:
        raise GraphError(f"{path}: not a graphdl training-step manifest (format "
                         f"{m.get('format')!r}, expected {FORMAT!r})")
    return m


def assemble(grad_graph: Graph, opt: Optimizer, params: Mapping[str, np.ndarray],
             carried: Mapping[str, np.ndarray], loss: str, metrics: Sequence[str] = (),
             masks: Mapping[str, float] | None = None, options: UpdateOptions | None = None,
             extra: Mapping[str, Any] | None = None) -> TrainStep:
    """The training step from a gradient graph whose inputs include ``params`` and ``carried``
    (non-trained state such as running statistics, each with an output ``NAME.next``) and whose
    outputs include ``loss``, ``metrics`` and ``P_grad`` for each parameter P. ``options``
    shapes the update (graphdl.optim.transforms); ``extra`` adds manifest entries."""
    b = GraphBuilder.from_graph(grad_graph)
    g = grad_graph
    ptensors = {n: b.tensor(g.value(n)) for n in params}
    grads = {n: b.tensor(g.value(f"{n}_grad")) for n in params}
    upd = build_updates(b, opt, ptensors, grads, options)
    outs = {loss: b.tensor(g.value(loss))}
    outs.update({m: b.tensor(g.value(m)) for m in metrics})
    outs.update({n + NEXT: b.tensor(g.value(n + NEXT)) for n in carried})
    outs.update({n + NEXT: t for n, t in upd.next_values.items()})
    graph = b.build(outs)
    initial = {**{n: np.array(a) for n, a in params.items()},
               **{n: np.array(a) for n, a in carried.items()},
               **init_state(opt, params, options)}
    dtype = next(iter(ptensors.values())).dtype
    hyper = all_hyperparams(opt, options)
    manifest = _manifest(graph, opt, hyper, params, carried, loss, metrics, masks or {},
                         dtype.name)
    manifest.update(extra or {})
    return TrainStep(graph, manifest, initial)


def _manifest(graph: Graph, opt: Optimizer, hyper: Mapping[str, float], params: Mapping,
              carried: Mapping, loss: str, metrics: Sequence[str], masks: Mapping[str, float],
              dtype: str) -> dict[str, Any]:
    kinds = {**{n: "param" for n in params}, **{n: "running_stat" for n in carried}}
    state_names = [v.name for v in graph.inputs
                   if v.name + NEXT in {o.name for o in graph.outputs}]
    state = [{"input": n, "output": n + NEXT, "kind": kinds.get(n, "optimizer")}
             for n in state_names]
    hp = set(hyper)
    batch = [v for v in graph.inputs if v.name not in hp and v.name not in set(state_names)]
    return {
        "format": FORMAT,
        "dtype": dtype,
        "optimizer": {"name": opt.name, "class": type(opt).__name__},
        "loss": loss,
        "metrics": list(metrics),
        "batch_inputs": [{"name": v.name, "dtype": v.type.dtype.name,
                          "shape": [d if isinstance(d, int) else str(d) for d in v.type.shape]}
                         for v in batch if v.name not in masks],
        "masks": {v.name: {"rate": float(masks[v.name]), "dtype": v.type.dtype.name,
                           "shape": [d if isinstance(d, int) else str(d) for d in v.type.shape]}
                  for v in batch if v.name in masks},
        "hyperparams": dict(hyper),
        "state": state,
        "next_step": {e["output"]: e["input"] for e in state},
    }
