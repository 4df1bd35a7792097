"""onnxruntime running graphdl's export against onnxruntime running PyTorch's export of the same
model with the same weights: the digits MLP (64-256-128-10, ReLU) and the CNN of
examples/cnn_digits.py, inference at batch 64, CPU, one intra-op thread. graphdl's graph goes
through ``passes.optimize`` first; PyTorch's through ``torch.onnx.export`` (the TorchScript
exporter, ``dynamo=False``). Outputs are checked equal before timing; the two sessions are timed
interleaved in one process and the median same-run ratio (graphdl / torch) is reported.

    python benchmarks/bench_ort_export.py [--rounds 30] [--json]

Target: ratio <= 1.05 for both models.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy / torch load their BLAS

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from examples.cnn_digits import net as cnn_net  # noqa: E402
from graphdl.nn import Dense, Sequential  # noqa: E402
from graphdl.training.minibatch import classifier_graphs  # noqa: E402

BATCH = 64
MLP_SIZES = (64, 256, 128, 10)


def mlp_net() -> Sequential:
    acts = ["relu", "relu", None]
    return Sequential(*(Dense(m, n, a, seed=(0, i)) for i, (m, n, a)
                        in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:], acts))))


def torch_mlp(p: dict[str, np.ndarray]) -> torch.nn.Module:
    """The same MLP in PyTorch; graphdl's Dense W is [in, out], torch's Linear weight [out, in]."""
    layers: list[torch.nn.Module] = []
    for i, (m, n) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:])):
        lin = torch.nn.Linear(m, n)
        lin.weight.data = torch.from_numpy(p[f"dense{i + 1}.W"].T.copy())
        lin.bias.data = torch.from_numpy(p[f"dense{i + 1}.b"].copy())
        layers += [lin, torch.nn.ReLU()] if i < len(MLP_SIZES) - 2 else [lin]
    return torch.nn.Sequential(*layers)


def torch_cnn(p: dict[str, np.ndarray]) -> torch.nn.Module:
    """examples/cnn_digits.py's net in PyTorch (the same OIHW conv weights)."""
    c1, c2 = torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.Conv2d(16, 32, 3, padding=1)
    fc = torch.nn.Linear(32 * 2 * 2, 10)
    for mod, name in ((c1, "conv2d1"), (c2, "conv2d2")):
        mod.weight.data = torch.from_numpy(p[f"{name}.W"].copy())
        mod.bias.data = torch.from_numpy(p[f"{name}.b"].copy())
    fc.weight.data = torch.from_numpy(p["dense1.W"].T.copy())
    fc.bias.data = torch.from_numpy(p["dense1.b"].copy())
    return torch.nn.Sequential(c1, torch.nn.ReLU(), torch.nn.MaxPool2d(2), c2, torch.nn.ReLU(),
                               torch.nn.MaxPool2d(2), torch.nn.Flatten(), fc)


def session(model_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def torch_export(module: torch.nn.Module, x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (torch.from_numpy(x),), buf, dynamo=False,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    return buf.getvalue()


def contenders(kind: str) -> tuple[dict[str, Callable[[], object]], dict[str, object]]:
    """The two sessions of one model, after checking their outputs agree."""
    layer, shape = (mlp_net(), ["N", 64]) if kind == "mlp" else (cnn_net(), ["N", 1, 8, 8])
    graph = classifier_graphs(layer, shape, kind)[1]
    params = {v.name: np.asarray(a) for v, a in graph.initializers.items()}
    rng = np.random.default_rng(0)
    x = rng.random([BATCH] + shape[1:]).astype(np.float32)
    ours = gd.to_onnx(passes.optimize(graph))
    theirs = torch_export((torch_mlp if kind == "mlp" else torch_cnn)(params), x)
    sessions = {"graphdl": session(ours.SerializeToString()), "torch": session(theirs)}
    outs = {k: s.run(None, {"x": x})[0] for k, s in sessions.items()}
    np.testing.assert_allclose(outs["graphdl"], outs["torch"], rtol=1e-4, atol=1e-5)
    fns = {k: (lambda s=s: s.run(None, {"x": x})) for k, s in sessions.items()}
    info = {k: [n.op_type for n in m.graph.node]
            for k, m in (("graphdl", ours), ("torch", _load(theirs)))}
    return fns, info


def _load(model_bytes: bytes):
    import onnx

    return onnx.load_model_from_string(model_bytes)


def timed(fn: Callable[[], object], reps: int) -> float:
    """Seconds per call, in this thread's CPU time (robust to other processes' load)."""
    t0 = time.thread_time()
    for _ in range(reps):
        fn()
    return (time.thread_time() - t0) / reps


def measure(kind: str, rounds: int, reps: int) -> dict[str, object]:
    fns, info = contenders(kind)
    for fn in fns.values():
        timed(fn, reps)  # warm-up
    ratios, times = [], {k: [] for k in fns}
    for r in range(rounds):
        names = list(fns) if r % 2 == 0 else list(fns)[::-1]  # alternate who goes first
        t = {k: timed(fns[k], reps) for k in names}
        for k, v in t.items():
            times[k].append(v)
        ratios.append(t["graphdl"] / t["torch"])
    return {"model": kind, "ratio": statistics.median(ratios),
            **{f"{k}_us": statistics.median(v) * 1e6 for k, v in times.items()},
            "ops": info}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = [measure(kind, args.rounds, args.reps) for kind in ("mlp", "cnn")]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(f"model={r['model']} ratio={r['ratio']:.3f} graphdl_us={r['graphdl_us']:.1f} "
              f"torch_us={r['torch_us']:.1f} graphdl_ops={','.join(r['ops']['graphdl'])} "
              f"torch_ops={','.join(r['ops']['torch'])}")


if __name__ == "__main__":
    main()
